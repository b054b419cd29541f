import sys

from dnatlas.cli import main

sys.exit(main())
