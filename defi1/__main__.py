import sys

from defi1.cli import main

sys.exit(main())
