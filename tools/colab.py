"""Make chapters open alone: an "Open in Colab" badge, a setup cell that installs emo_repro where it is missing,
and pictures stored in the notebook instead of beside it.

    python tools/colab.py nbs/02_head_speed.ipynb nbs/10_inference.ipynb   # add, or bring up to date
    python tools/colab.py --extra demo nbs/14_demo.ipynb                     # a chapter that needs an extra as well
    python tools/colab.py --check [NOTEBOOK ...]                             # exit 1 naming what is missing

What it gives each notebook it is handed:

- **the badge**: a markdown cell right after the title cell, a link that opens the notebook from the repository's
  `main` branch in Colab;
- **the setup cell**: the first code cell, hidden from the docs site (`#| hide`). Where `emo_repro` can be imported
  it does nothing; elsewhere (Colab, a fresh Jupyter) it says what it installs and installs the release the chapter
  is written for, tag `v<version>` of the repository, `<version>` being the package's (emo_repro/__init__.py). When
  the install replaced a package the kernel had already imported (on Colab: protobuf, which mediapipe 0.10.14 needs
  below 5), it says to restart the runtime;
- **pictures**: a markdown image with a relative path (`![...](images/x.jpg)`) becomes a cell attachment
  (`![...](attachment:x.jpg)`), so the picture travels with the notebook; the file itself is left where it is.

Running it twice changes nothing; after a version bump it rewrites the setup cells, and `--check` fails until it
has. Without paths `--check` looks at every chapter of nbs/: the front page (index.ipynb, which is the README)
and notebooks whose name starts with `_` are not chapters.
"""
import argparse, base64, hashlib, json, mimetypes, os, re, sys, tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BADGE_SVG = 'https://colab.research.google.com/assets/colab-badge.svg'
_re_image = re.compile(r'!\[([^\]]*)\]\((?!https?:|/|data:|attachment:)([^)\s]+)\)')  # a picture stored beside the notebook

def project()->dict:
    "The repository's GitHub path, the package's version and its dependencies, as pyproject.toml and emo_repro say."
    meta = tomllib.loads((ROOT/'pyproject.toml').read_text())['project']
    version = re.search(r'__version__\s*=\s*["\']([^"\']+)', (ROOT/'emo_repro'/'__init__.py').read_text())[1]
    repo = meta['urls']['Repository'].removeprefix('https://github.com/').strip('/')
    return dict(repo=repo, version=version, name=meta['name'], dependencies=meta['dependencies'])

def badge(nb_name:str, p:dict)->str:
    "The badge cell's markdown for the notebook named `nb_name`."
    return f"[![Open In Colab]({BADGE_SVG})](https://colab.research.google.com/github/{p['repo']}/blob/main/nbs/{nb_name})"

def setup(p:dict, extras:str='')->str:
    "The setup cell's code; `extras` ('demo') are the package's extras the chapter needs too."
    pin = lambda d: re.match(r'[\w.-]+', d)[0] + (f' {m[1]}' if (m := re.search(r'==\s*([\w.]+)', d)) else '')
    deps = ', '.join(map(pin, p['dependencies']))  # "torch, diffusers, ..., mediapipe 0.10.14, ..."
    spec = f"{p['name']}{f'[{extras}]' if extras else ''} @ git+https://github.com/{p['repo']}@v{p['version']}"
    return f'''#| hide
# Opened alone (in Colab, or a Jupyter without {p['name']}): install the release this chapter is written for.
import importlib.util, subprocess, sys
if importlib.util.find_spec('{p['name']}') is None:
    from importlib.metadata import distributions, packages_distributions
    versions = lambda: {{d.name: d.version for d in distributions()}}
    before = versions()
    print("installing {p['name']}{f'[{extras}]' if extras else ''} {p['version']} (tag v{p['version']} of github.com/{p['repo']}) and whichever of "
          "{deps} are missing: a few minutes")
    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '{spec}'], check=True)
    after = versions(); replaced = {{n for n,v in before.items() if after.get(n) != v}}
    if stale := sorted(m for m,ds in packages_distributions().items() if m in sys.modules and replaced & set(ds)):
        print(f"the install replaced {{', '.join(stale)}}, already imported here: restart the runtime (Colab: Runtime > Restart session) and run all again")'''

# ## Notebook cells

def src(cell)->str: return ''.join(cell['source'])

def lines(text:str)->list: return text.splitlines(keepends=True)

def cell_id(nb_name:str, role:str)->str: return hashlib.sha1(f'{nb_name}:{role}'.encode()).hexdigest()[:8]  # the same on every run

def new_cell(kind:str, text:str, nb_name:str, role:str)->dict:
    c = dict(cell_type=kind, id=cell_id(nb_name, role), metadata={}, source=lines(text))
    if kind == 'code': c.update(execution_count=None, outputs=[])
    return c

def title_index(cells:list)->int|None:
    "The title cell: the first markdown cell that opens with a `# ` heading."
    return next((i for i,c in enumerate(cells) if c['cell_type'] == 'markdown' and src(c).lstrip().startswith('# ')), None)

def is_badge(c)->bool: return c['cell_type'] == 'markdown' and 'colab.research.google.com/github/' in src(c)
def is_setup(c)->bool: return c['cell_type'] == 'code' and '# Opened alone (in Colab' in src(c)

def attach_images(cell:dict, nb_dir:Path)->list:
    "Store the pictures a markdown cell shows from files as its attachments; the paths it cannot find."
    missing = []
    def sub(m):
        path = nb_dir/m[2]
        kind = mimetypes.guess_type(path.name)[0]
        if not path.is_file() or not (kind or '').startswith('image/'): missing.append(m[2]); return m[0]
        cell.setdefault('attachments', {})[path.name] = {kind: base64.b64encode(path.read_bytes()).decode()}
        return f'![{m[1]}](attachment:{path.name})'
    text = _re_image.sub(sub, src(cell))
    if text != src(cell): cell['source'] = lines(text)
    return missing

def extras_of(cells:list)->str:
    "The extras the notebook's setup cell installs ('' if none, or no setup cell)."
    return next((m[1] for c in cells if is_setup(c) and (m := re.search(r"'[\w.-]+\[([\w,-]+)\] @ git\+", src(c)))), '')

def fix(nb:dict, nb_path:Path, p:dict, extras:str|None=None)->list:
    "Add or update the badge and setup cells (installing `extras` too; None: as before) and attach the pictures of `nb` in place; problems it cannot fix."
    cells,name = nb['cells'],nb_path.name
    t,extras = title_index(cells),extras_of(cells) if extras is None else extras
    if t is None: return ['no title cell (a markdown cell opening with `# `)']
    if not ok_cells(cells, name, p, extras):
        cells[:] = [c for c in cells if not (is_badge(c) or is_setup(c))]
        t = title_index(cells)
        cells.insert(t + 1, new_cell('markdown', badge(name, p), name, 'colab-badge'))
        cells.insert(t + 2, new_cell('code', setup(p, extras), name, 'colab-setup'))
    return [f'{path}: no such picture beside the notebook' for c in cells if c['cell_type'] == 'markdown'
            for path in attach_images(c, nb_path.parent)]

def ok_cells(cells:list, name:str, p:dict, extras:str)->bool:
    "Badge right after the title cell, setup cell right after the badge, both as they should read."
    t = title_index(cells)
    return t is not None and len(cells) > t + 2 and src(cells[t+1]) == badge(name, p) and src(cells[t+2]) == setup(p, extras)

def check(nb:dict, nb_path:Path, p:dict)->list:
    "What `fix` would change in `nb`, in words."
    cells,name,out = nb['cells'],nb_path.name,[]
    if not any(is_badge(c) for c in cells): out.append('no Colab badge')
    if not any(is_setup(c) for c in cells): out.append('no setup cell')
    if not out and not ok_cells(cells, name, p, extras_of(cells)): out.append(f'badge or setup cell out of place or out of date (the package is {p["version"]})')
    out += [f'picture {m[2]} is a file beside the notebook' for c in cells if c['cell_type'] == 'markdown' for m in _re_image.finditer(src(c))]
    return out

# ## Reading and writing as nbdev does

def read(path:Path)->tuple: text = path.read_text(encoding='utf-8'); return json.loads(text),text

def dump(nb:dict)->str: return json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + '\n'  # nbdev-clean's format

def chapters()->list:
    return sorted(p for p in (ROOT/'nbs').glob('*.ipynb') if p.name != 'index.ipynb' and not p.name.startswith('_'))

def main(argv=None)->int:
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument('notebooks', nargs='*', type=Path, help='notebooks to fix or check (check: default every chapter of nbs/)')
    a.add_argument('--check', action='store_true', help='change nothing; exit 1 naming the notebooks that need this tool')
    a.add_argument('--extra', help="the package's extras these chapters need as well, e.g. demo (default: what their setup cells install)")
    args = a.parse_args(argv)
    if not args.notebooks and not args.check: a.error('name the notebooks to fix')
    p,bad = project(),0
    for path in args.notebooks or chapters():
        nb,text = read(path)
        if args.check: problems = check(nb, path, p)
        else:
            problems = fix(nb, path, p, args.extra)
            if dump(nb) != text: path.write_text(dump(nb), encoding="utf-8"); print(f"{os.path.relpath(path)}: updated")
        for pr in problems: print(f"{os.path.relpath(path)}: {pr}", file=sys.stderr)
        bad += bool(problems)
    if args.check and bad: print(f'{bad} notebook{"s" * (bad > 1)} to fix: python tools/colab.py NOTEBOOK ...', file=sys.stderr)
    return int(bool(bad))

if __name__ == '__main__': sys.exit(main())
