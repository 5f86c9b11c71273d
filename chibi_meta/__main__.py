import sys

from chibi_meta.cli import main

sys.exit(main())
