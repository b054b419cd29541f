"""The dnatlas explorer: a FastAPI server (and a static export) over an atlas.

Same layer as the CLI: it may import pipelines, the model layer and the atlas, never the
CLI. :mod:`.api_models` is the API's spec; :mod:`.shards` the static export's file rule.
"""
