"""Genome data: alphabet, readers (FASTA/GenBank), the packed genome store and window sampler."""
