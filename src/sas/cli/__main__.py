import sys

from sas.cli import main

sys.exit(main())
