"""pytest plugin (loaded with `-p berth_outcomes`): each test's outcome as
pytest's own summary counts it, written as JSON to $BERTH_OUTCOMES.

{nodeid: {"outcome": passed|failed|error|skipped|xfailed|xpassed,
          "teardown_error": bool, "message": first line of the reason}}

JUnit XML cannot tell an xpass from a pass, nor a setup error from a failure;
this keeps the numbers identical to pytest's last line.
"""

import json
import os

_results = {}


def _message(report):
    longrepr = report.longrepr
    if longrepr is None:
        return ''
    if isinstance(longrepr, tuple):  # skip: (path, line, reason)
        return str(longrepr[2])
    crash = getattr(longrepr, 'reprcrash', None)
    if crash is not None and crash.message:
        return crash.message.strip().splitlines()[0]
    text = str(longrepr).strip().splitlines()
    return text[-1] if text else ''


def pytest_runtest_logreport(report):
    r = _results.setdefault(report.nodeid, {
        'outcome': None, 'teardown_error': False, 'message': ''})
    xfail = hasattr(report, 'wasxfail')
    if report.when == 'setup':
        if report.failed:
            r['outcome'], r['message'] = 'error', _message(report)
        elif report.skipped:
            r['outcome'] = 'xfailed' if xfail else 'skipped'
            r['message'] = report.wasxfail if xfail else _message(report)
    elif report.when == 'call':
        if report.passed:
            r['outcome'] = 'xpassed' if xfail else 'passed'
        elif report.skipped:
            r['outcome'] = 'xfailed' if xfail else 'skipped'
            r['message'] = report.wasxfail if xfail else _message(report)
        else:
            r['outcome'], r['message'] = 'failed', _message(report)
    elif report.when == 'teardown' and report.failed:
        r['teardown_error'] = True
        if not r['message']:
            r['message'] = 'teardown: ' + _message(report)


def pytest_sessionfinish(session):
    path = os.environ.get('BERTH_OUTCOMES')
    if path:
        with open(path, 'w') as f:
            json.dump(_results, f, indent=1, sort_keys=True)
