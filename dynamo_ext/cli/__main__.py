"""``python -m dynamo_ext.cli``: the dynamo-ext command."""
import sys

from . import main

sys.exit(main())
