"""Write README.md from nbs/index.ipynb without Quarto (which `nbdev-readme` needs).

Markdown cells are copied as they are (relative image links, written for the notebook in nbs/, are
pointed into nbs/); code cells become ```python blocks followed by their text
output; cells marked `#| hide` are left out and nbdev directives are stripped. `--check` exits 1 when
README.md differs from what the notebook says, which CI uses to keep the two faithful.
"""
import json, re, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent

def _src(cell): return ''.join(cell['source'])

def _directives(src): return {l[3:].strip().split()[0] for l in src.splitlines() if l.startswith('#|') and l[3:].strip()}

def _output_text(cell):
    out = []
    for o in cell.get('outputs', []):
        if o.get('output_type') == 'stream': out.append(''.join(o['text']))
        elif 'text/markdown' in o.get('data', {}): out.append(''.join(o['data']['text/markdown']))
        elif 'text/plain' in o.get('data', {}): out.append(''.join(o['data']['text/plain']))
    return ''.join(out).rstrip()

def render(nb_path=root/'nbs'/'index.ipynb') -> str:
    "The README text for the notebook at `nb_path`."
    parts = ['<!-- Generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file. -->']
    for cell in json.loads(Path(nb_path).read_text())['cells']:
        src = _src(cell)
        if cell['cell_type'] == 'markdown': parts.append(re.sub(r'\]\((?!https?:|/|#)', '](nbs/', src.strip())); continue
        if cell['cell_type'] != 'code' or {'hide', 'export', 'exporti', 'default_exp'} & _directives(src): continue
        code = '\n'.join(l for l in src.splitlines() if not l.startswith('#|')).strip()
        if code: parts.append(f'```python\n{code}\n```')
        out = _output_text(cell)
        if out: parts.append(f'```\n{out}\n```')
    return '\n\n'.join(parts) + '\n'

if __name__ == '__main__':
    text, readme = render(), root/'README.md'
    if '--check' in sys.argv:
        if not readme.exists() or readme.read_text() != text:
            sys.exit('README.md differs from nbs/index.ipynb: run `python tools/make_readme.py` and commit.')
    else: readme.write_text(text); print(f'wrote {readme}')
