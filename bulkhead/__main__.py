import gc
import os
import sys

from .cli import main

# A short-lived process: the Pulumi SDK leaves tens of thousands of objects in
# reference cycles per plan, and collecting them before exit is pure cost (about a
# quarter of a plan's time); the OS frees everything at exit. Only here, not in
# main(), so that tests calling main() in-process keep their collector.
gc.disable()
try:
    code = main()
except SystemExit as exc:  # argparse's usage errors and --help
    code = exc.code
if code is None:
    code = 0
elif not isinstance(code, int):
    print(code, file=sys.stderr)
    code = 1
# Teardown frees every object of the run one by one (the SDK's Outputs, futures and
# registrations: a quarter of `plan`'s wall time at N=200, issue 23). What the verb
# wrote is safe by now: files are closed (write_plan fsyncs the plan), so flush the
# standard streams and leave without freeing. Only in the CLI process.
for stream in (sys.stdout, sys.stderr):
    try:
        stream.flush()
    except (BrokenPipeError, ValueError):  # `plan | head` closed the pipe: nothing left to say
        pass
os._exit(code)
