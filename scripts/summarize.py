#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Count test results across meson test logs and JUnit XML files.

Usage: summarize.py [options] [LABEL=]FILE...

FILE is one of
  * a meson test log (meson-logs/testlog*.json: one JSON object per line with
    "name", "result", "returncode", "stdout"); other tools (the fuzz runner,
    .ci/run) write the same format for their own results;
  * a JUnit XML file (*.xml), e.g. from `pytest --junitxml=FILE`.

Counting rules (the last line printed is "N passed, N failed, N skipped"):
  * A test whose stdout is TAP counts each subtest: "ok" passed, "not ok"
    failed, "ok ... # SKIP" skipped, "not ok ... # TODO" passed (expected
    failure), "ok ... # TODO" failed (unexpected pass, as meson says). A
    plan "1..0" with no subtests counts as one skipped test.
  * A TAP test that meson did not accept (crash, timeout, exit status, bad
    plan, bail out) while none of its subtests failed counts one more failed
    test, so a crash after the last "ok" is never hidden. Exception: exit
    status 77 after a "1..0 # SKIP" plan is a skip (ferry's harness does that).
  * Other tests count once: OK and EXPECTEDFAIL passed, SKIP skipped,
    anything else (FAIL, ERROR, TIMEOUT, UNEXPECTEDPASS...) failed.
  * JUnit: each <testcase> counts once: <failure>/<error> failed, <skipped>
    skipped (pytest's xfail, type "pytest.xfail", counts as passed).
  * A FILE that does not exist or cannot be read counts one failed test.

Exit status: 0 when nothing failed, 1 otherwise, 2 on a usage error.
"""

import argparse
import json
import os
import re
import sys
import xml.etree.ElementTree as ET

# The TAP grammar of meson 1.0's TAPParser (mesonbuild/mtest.py).
_DIRECTIVE = r'(?:\s*\#\s*([Ss][Kk][Ii][Pp]\S*|[Tt][Oo][Dd][Oo])\b\s*(.*))?'
RE_TEST = re.compile(r'((?:not )?ok)\s*(?:([0-9]+)\s*)?([^#]*)' + _DIRECTIVE)
RE_PLAN = re.compile(r'1\.\.([0-9]+)' + _DIRECTIVE)
RE_BAILOUT = re.compile(r'Bail out!\s*(.*)')

GOOD_RESULTS = {'OK', 'EXPECTEDFAIL'}
SKIP_RESULTS = {'SKIP'}


class Tally:
    def __init__(self, label):
        self.label = label
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.failures = []  # descriptions
        self.skips = []

    def add(self, kind, what):
        if kind == 'passed':
            self.passed += 1
        elif kind == 'skipped':
            self.skipped += 1
            self.skips.append(what)
        else:
            self.failed += 1
            self.failures.append(what)


def parse_tap(text):
    """Returns (subtests, plan, bailout) or None when text is not TAP.

    subtests: list of (kind, description); plan: (count, skip_reason|None)."""
    subtests, plan, bailout = [], None, None
    for line in text.splitlines():
        line = line.rstrip()
        if not line or line.startswith('#'):
            continue
        m = RE_TEST.match(line)
        if m:
            ok = m.group(1) == 'ok'
            num = m.group(2) or str(len(subtests) + 1)
            name = m.group(3).strip().lstrip('-').strip()
            directive = (m.group(4) or '').upper()
            reason = (m.group(5) or '').strip()
            desc = f'{num} - {name}' if name else num
            if directive.startswith('SKIP') and ok:
                kind = 'skipped'
                desc += f' ({reason})' if reason else ''
            elif directive == 'TODO':
                kind = 'failed' if ok else 'passed'
                if ok:
                    desc += ' (TODO test passed unexpectedly)'
            else:
                kind = 'passed' if ok else 'failed'
            subtests.append((kind, desc))
            continue
        m = RE_PLAN.match(line)
        if m and plan is None:
            skip = (m.group(2) or '').upper().startswith('SKIP')
            plan = (int(m.group(1)), (m.group(3) or '').strip() if skip else None)
            continue
        m = RE_BAILOUT.match(line)
        if m and bailout is None:
            bailout = m.group(1).strip() or 'bailed out'
    if not subtests and plan is None and bailout is None:
        return None
    return subtests, plan, bailout


def result_detail(rec):
    res = rec.get('result', '?')
    if rec.get('detail'):  # written by ferry's own runners (.ci/run, make fuzz)
        return f"{res} ({rec['detail']})"
    rc = rec.get('returncode')
    if res == 'TIMEOUT':
        return 'TIMEOUT'
    if isinstance(rc, int) and rc < 0:
        return f'{res} (killed by signal {-rc})'
    if isinstance(rc, int) and rc != 0:
        return f'{res} (exit status {rc})'
    return res


def count_meson_record(rec, tally):
    name = rec.get('name', '?')
    res = str(rec.get('result', 'ERROR')).upper()
    tap = parse_tap(rec.get('stdout') or '')
    if tap is None:
        if res in GOOD_RESULTS:
            tally.add('passed', name)
        elif res in SKIP_RESULTS:
            tally.add('skipped', name)
        else:
            tally.add('failed', f'{name}: {result_detail(rec)}')
        return
    subtests, plan, bailout = tap
    for kind, desc in subtests:
        tally.add(kind, f'{name}: {desc}')
    skip_plan = plan is not None and not subtests and (plan[0] == 0 or plan[1] is not None)
    if skip_plan:
        reason = plan[1] or 'no tests'
        # exit 77 with a skip plan: the harness's "skip all" (meson says ERROR).
        if res in GOOD_RESULTS | SKIP_RESULTS or rec.get('returncode') == 77:
            tally.add('skipped', f'{name} ({reason})')
            return
    if bailout is not None:
        tally.add('failed', f'{name}: Bail out! {bailout}')
        return
    if res in GOOD_RESULTS | SKIP_RESULTS:
        return
    if any(kind == 'failed' for kind, _ in subtests):
        return  # the failing subtests already explain meson's verdict
    why = result_detail(rec)
    if plan is None:
        why += ', no TAP plan'
    elif plan[0] != len(subtests):
        why += f', planned {plan[0]} subtests, ran {len(subtests)}'
    tally.add('failed', f'{name}: {why}')


def count_meson_log(path, tally):
    with open(path, encoding='utf-8', errors='replace') as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                tally.add('failed', f'{path}:{lineno}: unreadable log line ({e})')
                continue
            if isinstance(rec, dict):
                count_meson_record(rec, tally)


def count_junit(path, tally):
    root = ET.parse(path).getroot()
    for case in root.iter('testcase'):
        cls = case.get('classname') or ''
        name = f"{cls}::{case.get('name', '?')}" if cls else case.get('name', '?')
        bad = case.find('failure')
        if bad is None:
            bad = case.find('error')
        skip = case.find('skipped')
        if bad is not None:
            msg = (bad.get('message') or '').splitlines()
            tally.add('failed', f"{name}: {bad.tag}" + (f': {msg[0][:200]}' if msg else ''))
        elif skip is not None and skip.get('type') != 'pytest.xfail':
            tally.add('skipped', f"{name} ({skip.get('message') or 'skipped'})")
        else:
            tally.add('passed', name)


def default_label(path):
    """build-asan/meson-logs/testlog.json -> build-asan;
    build/meson-logs/testlog-valgrind.json -> build/valgrind;
    build/junit/pytest.xml -> build/pytest."""
    norm = os.path.normpath(path)
    parts = norm.split(os.sep)
    base = os.path.splitext(parts[-1])[0]
    if len(parts) >= 3 and parts[-2] in ('meson-logs', 'junit'):
        top = parts[-3]
    elif len(parts) >= 2:
        top = parts[-2]
    else:
        top = ''
    if base.startswith('testlog'):
        base = base[len('testlog'):].lstrip('-_.')
    return '/'.join(p for p in (top, base) if p) or norm


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('files', nargs='*', metavar='[LABEL=]FILE')
    ap.add_argument('--no-total', action='store_true',
                    help='print no "N passed, N failed, N skipped" line (for '
                         'intermediate checks; the exit status still says)')
    ap.add_argument('--skipped', action='store_true', help='also list skipped tests')
    ap.add_argument('-q', '--quiet', action='store_true', help='no per-file lines')
    args = ap.parse_args(argv)
    if not args.files:
        ap.error('no log files given')

    tallies = []
    for arg in args.files:
        label, sep, path = arg.partition('=')
        if not sep or not label or os.path.exists(arg):
            label, path = default_label(arg), arg
        tally = Tally(label)
        tallies.append(tally)
        try:
            if path.endswith('.xml'):
                count_junit(path, tally)
            else:
                count_meson_log(path, tally)
        except (OSError, ET.ParseError) as e:
            tally.add('failed', f'{path}: cannot read test results ({e})')

    out = sys.stdout
    if not args.quiet:
        width = max(len(t.label) for t in tallies)
        for t in tallies:
            out.write(f'  {t.label:<{width}}  {t.passed:5d} passed {t.failed:5d} failed'
                      f' {t.skipped:5d} skipped\n')
    if args.skipped:
        for t in tallies:
            for what in t.skips:
                out.write(f'SKIP [{t.label}] {what}\n')
    for t in tallies:
        for what in t.failures:
            out.write(f'FAIL [{t.label}] {what}\n')
    passed = sum(t.passed for t in tallies)
    failed = sum(t.failed for t in tallies)
    skipped = sum(t.skipped for t in tallies)
    if not args.no_total:
        out.write(f'{passed} passed, {failed} failed, {skipped} skipped\n')
    out.flush()
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
