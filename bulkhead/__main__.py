import gc
import sys

from .cli import main

# A short-lived process: the Pulumi SDK leaves tens of thousands of objects in
# reference cycles per plan, and collecting them before exit is pure cost (about a
# quarter of a plan's time); the OS frees everything at exit. Only here, not in
# main(), so that tests calling main() in-process keep their collector.
gc.disable()
sys.exit(main())
