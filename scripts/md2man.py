#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Section 3 manual pages from the API reference (docs/api/*.md).

Usage: md2man.py --version V PAGE.md OUT.3    one page (roff, man(7) macros)
       md2man.py --names PAGE.md...           a line a page: its manual page,
                                              then the functions its NAME
                                              section lists (their aliases)

The pages follow one layout (docs/api/README.md): a "# page — title" line,
then sections NAME, SYNOPSIS, ... as "##", subsections as "###". This
handles the Markdown they use: paragraphs, fenced code, "-" and "1." lists,
tables (kept as preformatted text), `code`, **bold**, *emphasis* and links
(a link to another API page becomes a reference to its manual page). The
output depends only on the input and the version (no dates), so that a
build is reproducible. docs/api/README.md becomes ferry(3), the overview.
"""
import os
import re
import sys

NAME_RE = re.compile(r'`(ferry_[a-z0-9_]+)`')


def page_name(md_path):
    base = os.path.splitext(os.path.basename(md_path))[0]
    return 'ferry' if base == 'README' else 'ferry_' + base


SPECIAL = {'\u2014': '\\(em', '\u2013': '\\(en', '\u2192': '\\(->', '\u2190': '\\(<-',
           '\u2264': '\\(<=', '\u2265': '\\(>=', '\u00d7': '\\(mu', '\u2248': '\\(~~',
           '\u2019': "'", '\u2018': "'", '\u201c': '"', '\u201d': '"', '\u2026': '...'}


def escape(text):
    """Roff-escapes plain text (no markup in it yet): ASCII out."""
    text = text.replace('\\', '\\e')
    return ''.join(c if ord(c) < 128 else SPECIAL.get(c, '\\[u%04X]' % ord(c)) for c in text)


def inline(text):
    """Markdown inline markup to roff fonts; text is escaped first."""
    out = []
    # Split off code spans first: nothing inside them is markup.
    for i, part in enumerate(re.split(r'(`[^`]*`)', text)):
        if i % 2:
            out.append('\\fB' + escape(part[1:-1]) + '\\fR')
            continue
        part = escape(part)

        def link(m):
            label, target = m.group(1), m.group(2)
            if re.fullmatch(r'[a-z0-9_-]+\.md', target) and '/' not in target:
                page = page_name(target)
                if label == os.path.splitext(target)[0]:
                    return '\\fB%s\\fR(3)' % page
                return '%s (\\fB%s\\fR(3))' % (label, page)
            return label
        part = re.sub(r'\[([^\]]+)\]\(([^)\s]+)\)', link, part)
        part = re.sub(r'\*\*([^*]+)\*\*', r'\\fB\1\\fR', part)
        part = re.sub(r'(?<![\w*])\*([^*\s][^*]*)\*(?![\w*])', r'\\fI\1\\fR', part)
        part = re.sub(r'(?<!\w)_([^_\s][^_]*)_(?!\w)', r'\\fI\1\\fR', part)
        out.append(part)
    return ''.join(out)


def plain(text):
    """The text of inline Markdown without its markup (NAME line, tables)."""
    text = re.sub(r'\[([^\]]+)\]\([^)\s]+\)', r'\1', text)
    return text.replace('`', '').replace('**', '')


def roff_line(line):
    """A line of roff text must not start with a control character."""
    return '\\&' + line if line[:1] in ('.', "'") else line


def parse_title(lines):
    m = re.match(r'#\s+(\S+)\s+[—-]+\s+(.*)', lines[0]) if lines else None
    return (m.group(1), m.group(2).strip()) if m else (None, lines[0].lstrip('# ').strip())


def section(lines, name):
    """The lines of the "## name" section."""
    out, inside = [], False
    for line in lines:
        if line.startswith('## '):
            inside = line[3:].strip().upper() == name
            continue
        if inside:
            out.append(line)
    return out


def names(lines):
    """The functions (and only exact names) listed before the dash of NAME."""
    text = ' '.join(section(lines, 'NAME'))
    head = re.split(r'\s[—–]\s|\s--?\s', text, maxsplit=1)[0]
    return NAME_RE.findall(head)


def convert(lines, page, version):
    title, subtitle = parse_title(lines)
    out = ['.\\" Generated from docs/api by scripts/md2man.py; edit the Markdown.',
           '.TH %s 3 "" "ferry %s" "ferry C API"' % (page.upper(), version)]
    if page == 'ferry':
        # The overview has no NAME section of its own.
        out += ['.SH NAME', 'ferry \\- the ferry C API: moving KV-cache data between agents',
                '.SH DESCRIPTION']
    body = lines[1:]
    i, n = 0, len(body)
    para = []
    in_name = False

    def flush():
        if not para:
            return
        text = ' '.join(s.strip() for s in para)
        if in_name:
            # NAME: "a, b \- what they do", plain text (man -k reads it).
            m = re.split(r'\s[—–]\s', plain(text), maxsplit=1)
            text = escape(m[0]) + (' \\- ' + escape(m[1]) if len(m) > 1 else '')
            out.append(roff_line(text))
        else:
            out.append('.PP')
            out.append(roff_line(inline(text)))
        para.clear()

    while i < n:
        line = body[i]
        stripped = line.strip()
        if stripped.startswith('```'):
            flush()
            i += 1
            out += ['.PP', '.RS 4', '.nf']
            while i < n and not body[i].strip().startswith('```'):
                out.append(roff_line(escape(body[i].rstrip())))
                i += 1
            out += ['.fi', '.RE']
            i += 1
            continue
        if line.startswith('## '):
            flush()
            name = line[3:].strip().upper()
            in_name = name == 'NAME'
            out.append('.SH ' + escape(plain(name)))
        elif line.startswith('### ') or line.startswith('#### '):
            flush()
            out.append('.SS ' + escape(plain(line.lstrip('#').strip())))
        elif line.startswith('# '):
            flush()
        elif not stripped:
            flush()
        elif stripped.startswith('|'):
            flush()
            # A table: one tagged paragraph a row (first cell the tag, the
            # others after it); its header row (the one above |---|) dropped.
            rows = []
            while i < n and body[i].strip().startswith('|'):
                row = body[i].strip()
                if re.fullmatch(r'\|[\s:|-]+\|?', row):
                    rows = []
                else:
                    rows.append([c.strip() for c in row.strip('|').split('|')])
                i += 1
            for cells in rows:
                out += ['.TP', roff_line(inline(cells[0])),
                        roff_line(inline(' \u2014 '.join(c for c in cells[1:] if c)))]
            continue
        elif re.match(r'\s*([-*+]|\d+\.)\s+', line) and not line.startswith('    '):
            flush()
            m = re.match(r'(\s*)([-*+]|\d+\.)\s+(.*)', line)
            indent = len(m.group(1))
            mark = '\\(bu' if m.group(2) in '-*+' else m.group(2)
            item = [m.group(3)]
            i += 1
            # Continuation lines: indented further than the marker.
            while i < n and body[i].strip() and not body[i].strip().startswith('```') and \
                    (len(body[i]) - len(body[i].lstrip())) > indent and \
                    not re.match(r'\s*([-*+]|\d+\.)\s+', body[i][indent:] if indent else '\0'):
                item.append(body[i].strip())
                i += 1
            if indent:
                out += ['.RS 4', '.IP %s 4' % mark, roff_line(inline(' '.join(item))), '.RE']
            else:
                out += ['.IP %s 4' % mark, roff_line(inline(' '.join(item)))]
            continue
        else:
            para.append(line)
        i += 1
    flush()
    return '\n'.join(out) + '\n'


def main(argv):
    if len(argv) >= 3 and argv[1] == '--names':
        # One line a page: its manual page, then the functions it lists
        # (each only once over all pages: the first page that lists it).
        seen = set()
        for path in argv[2:]:
            with open(path, encoding='utf-8') as f:
                fns = [fn for fn in names(f.read().splitlines()) if fn not in seen]
            page = page_name(path)
            fns = [fn for fn in dict.fromkeys(fns) if fn != page]
            seen.update(fns)
            print(' '.join([page] + fns))
        return 0
    if len(argv) != 5 or argv[1] != '--version':
        sys.stderr.write(__doc__)
        return 2
    version, src, dst = argv[2], argv[3], argv[4]
    with open(src, encoding='utf-8') as f:
        lines = f.read().splitlines()
    text = convert(lines, page_name(src), version)
    with open(dst, 'w', encoding='utf-8') as f:
        f.write(text)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
