"""Run plain test modules under MicroPython: micropython tests/micropython_runner.py MODULE [MODULE ...].

MODULE is a dotted name such as tests.firmware_bridge.test_core_link. Every function whose name starts with
test_ is called; the last line says how many passed and failed, and the exit status is 1 on any failure.
"""

import gc
import sys


def run_module(name):
    module = __import__(name)
    for part in name.split(".")[1:]:
        module = getattr(module, part)
    passed = failed = 0
    for attribute in sorted(dir(module)):
        if not attribute.startswith("test_"):
            continue
        test = getattr(module, attribute)
        gc.collect()  # each test starts from a swept heap, so results do not depend on the order of tests
        try:
            test()
        except Exception as error:  # report every failure, then go on with the next test
            failed += 1
            print("FAIL %s.%s: %s: %s" % (name, attribute, type(error).__name__, error))
            sys.print_exception(error) if hasattr(sys, "print_exception") else None
        else:
            passed += 1
    return passed, failed


def main(names):
    sys.path.insert(0, ".")
    total_passed = total_failed = 0
    for name in names:
        passed, failed = run_module(name)
        total_passed += passed
        total_failed += failed
    print("%d passed, %d failed" % (total_passed, total_failed))
    sys.exit(1 if total_failed or not total_passed else 0)


main(sys.argv[1:])
