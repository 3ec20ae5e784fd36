import sys

from tinysm.cli import main

sys.exit(main())
