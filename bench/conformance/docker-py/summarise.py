#!/usr/bin/env python3
"""Summarise docker-py integration runs side by side.

Usage: summarise.py NAME=OUTCOMES.json [NAME=OUTCOMES.json ...]

The JSON files come from the berth_outcomes pytest plugin (one per daemon).
Prints markdown: pytest's counts per daemon ("not failed" = passed +
skipped + xfailed + xpassed, the tests that did not fail or error), the
tests whose outcome differs between daemons, and each daemon's failures
with the first line of their message.
"""

import json
import sys

KINDS = ['passed', 'failed', 'error', 'skipped', 'xfailed', 'xpassed']
BAD = ('failed', 'error')


def short(nodeid):
    return nodeid.replace('tests/integration/', '').replace('.py::', '::')


def main(args):
    runs = []
    for a in args:
        name, _, path = a.partition('=')
        with open(path) as f:
            runs.append((name, json.load(f)))
    print('| daemon | tests | passed | failed | error | skipped | xfailed | xpassed '
          '| not failed | teardown errors |')
    print('|---|' + '---|' * 9)
    for name, res in runs:
        kinds = [r['outcome'] for r in res.values()]
        td = sum(1 for r in res.values() if r['teardown_error'])
        counts = ' | '.join(str(kinds.count(k)) for k in KINDS)
        ok = sum(1 for k in kinds if k not in BAD)
        print(f'| {name} | {len(kinds)} | {counts} | {ok} | {td} |')
    print()
    if len(runs) > 1:
        names = sorted(set().union(*(r.keys() for _, r in runs)))

        def cell(res, n):
            r = res.get(n)
            return r['outcome'] if r else '-'
        diff = [n for n in names
                if len({cell(r, n) in BAD for _, r in runs}) > 1]
        print(f'## Tests failing on one daemon only ({len(diff)})')
        print()
        print('| test | ' + ' | '.join(n for n, _ in runs) + ' |')
        print('|---|' + '---|' * len(runs))
        for n in diff:
            print(f'| {short(n)} | ' + ' | '.join(cell(r, n) for _, r in runs) + ' |')
        print()
    for name, res in runs:
        fails = sorted(n for n, r in res.items() if r['outcome'] in BAD)
        print(f'## {name}: failures and errors ({len(fails)})')
        print()
        for n in fails:
            print(f'- `{short(n)}` ({res[n]["outcome"]}): {res[n]["message"][:240]}')
        print()


if __name__ == '__main__':
    main(sys.argv[1:])
