import sys

from moodscope.cli import main

sys.exit(main())
