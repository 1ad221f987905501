"""Run the chapters as a reader does: emo_repro installed from its wheel into a fresh environment, each notebook
copied alone into an empty folder and run top to bottom, as Jupyter's "Run all" runs it.

    python tools/run_as_reader.py [NOTEBOOK ...] [--quick] [--json benchmarks/results/reader_run.json]

1. The wheel is built from the package's files alone (pyproject.toml, README.md, LICENSE, emo_repro/) with
   `python -m build --wheel`.
2. A fresh virtual environment gets torch first (`--torch`, default torch==2.13.0, the CPU build on this project's
   machines), then the wheel with its `demo` extra (chapter 14 needs gradio), and ipykernel, the kernel a Jupyter or Colab runs notebooks in. Nothing else of the
   repository is there.
3. Each notebook (default: every one in nbs/) is copied alone into an empty folder and run by nbclient in a new
   kernel of that environment, from that folder: every cell, those the tests skip (`#| notest`, `#| slow`, `#| gpu`)
   included, stopping at the first error as "Run all" does.

For each it records pass or fail (and where: the cell and the error's last line), the seconds from the kernel's
start to the last cell's end, and the peak memory of the kernel's process tree: the largest sum of the resident
memory of the kernel and every process it started, sampled every 0.2 s, or the kernel's own high-water mark
(`VmHWM`, exact) where that is larger. A markdown table goes to stdout and the same rows, with the environment, to
`--json`
(benchmarks/results/reader_run.json; reader_run_quick.json for `--quick`).

`--quick` runs the chapters of QUICK only, without the cells the tests skip (tst_flags of pyproject.toml): the
check meant for CI. `--venv DIR` reuses an environment made by an earlier run (its wheel is replaced), to save the
install when trying again.
"""
import argparse, json, os, platform, re, shutil, subprocess, sys, tempfile, threading, time, tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_FILES = ['pyproject.toml', 'README.md', 'LICENSE', 'emo_repro']
# Chapters that ran whole, every cell, in under 5 minutes each on a shared 2-core CPU (benchmarks/results/reader_run.json;
# 10_inference took 19 minutes). Chapters not listed have not been measured this way yet.
QUICK = ['index', '00_core', '02_head_speed', '03_face_locator', '04_reference_attention', '06_backbone', '08_synthetic',
         'a1_presets', 'a4_face_tracking', 'a5_weight_loading', 'a9_docs_site']

def sh(*cmd, **kw):
    "Run `cmd`, failing loudly with its output."
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if r.returncode: sys.exit(f"{' '.join(map(str, cmd))} failed:\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
    return r.stdout

def build_wheel(tmp:Path)->Path:
    "The wheel of the package, built from its own files only."
    src = tmp/'src'; src.mkdir()
    for f in PACKAGE_FILES:
        (shutil.copytree if (ROOT/f).is_dir() else shutil.copy)(ROOT/f, src/f)
    shutil.rmtree(src/'emo_repro'/'__pycache__', ignore_errors=True)
    sh(sys.executable, '-m', 'build', '--wheel', '--outdir', tmp/'dist', src)
    return next((tmp/'dist').glob('*.whl'))

def make_env(venv:Path, wheel:Path, torch:str, fresh:bool):
    "A virtual environment with torch, the wheel and ipykernel."
    pip = [venv/'bin'/'python', '-m', 'pip', 'install', '-q']
    if fresh:
        sh(sys.executable, '-m', 'venv', venv)
        sh(*pip, '--upgrade', 'pip'); sh(*pip, torch)
        sh(*pip, f'emo_repro[demo] @ {wheel.as_uri()}', 'ipykernel')  # the demo extra: chapter 14's readers install it (its setup cell says so)
    else: sh(*pip, '--force-reinstall', '--no-deps', wheel)

def kernel_spec(tmp:Path, venv:Path)->str:
    "A kernelspec for the environment's python, found through JUPYTER_PATH; its name."
    d = tmp/'jupyter'/'kernels'/'emo-reader'; d.mkdir(parents=True, exist_ok=True)
    argv = [str(venv/'bin'/'python'), '-m', 'ipykernel_launcher', '-f', '{connection_file}']
    (d/'kernel.json').write_text(json.dumps(dict(argv=argv, display_name='emo_repro reader', language='python')))
    os.environ['JUPYTER_PATH'] = str(tmp/'jupyter')
    return 'emo-reader'

# ## Memory of a process tree, from /proc

def _children(pid:int)->list:
    try: return [int(c) for t in os.listdir(f'/proc/{pid}/task') for c in Path(f'/proc/{pid}/task/{t}/children').read_text().split()]
    except OSError: return []

def _status_kb(pid:int, field:str)->int:
    try: return int(re.search(rf'^{field}:\s+(\d+)', Path(f'/proc/{pid}/status').read_text(), re.M)[1])
    except (OSError, TypeError): return 0

class TreePeak(threading.Thread):
    "Samples the resident memory of every process below this one: the peak sum, and the largest VmHWM seen."
    def __init__(self, every:float=0.2):
        super().__init__(daemon=True); self.every,self.peak,self.hwm,self.done = every,0,0,threading.Event()
    def run(self):
        while not self.done.wait(self.every):
            tree,todo = [],_children(os.getpid())
            while todo: p = todo.pop(); tree.append(p); todo += _children(p)
            self.peak = max(self.peak, sum(_status_kb(p, 'VmRSS') for p in tree))
            self.hwm = max([self.hwm] + [_status_kb(p, 'VmHWM') for p in tree])
    def stop(self)->float:
        "Stop sampling; the peak in GB."
        self.done.set(); self.join(); return max(self.peak, self.hwm) * 1024 / 1e9

# ## One chapter

def flagged(cell, flags:set)->bool:
    "Does the cell carry one of `flags` (`#| slow`, ...)?"
    lead = re.match(r'(?:[ \t]*#\|.*\n?)*', ''.join(cell['source']))[0]
    return bool(flags & {w for l in lead.splitlines() for w in l.lstrip()[2:].split()})

def run_chapter(nb_path:Path, folder:Path, kernel:str, env:dict, skip:set, timeout:int)->dict:
    "Run the notebook alone in `folder`: result, seconds, peak GB, and where it failed."
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
    folder.mkdir(parents=True)
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells = [c for c in nb.cells if not (c.cell_type == 'code' and flagged(c, skip))]
    nbformat.write(nb, folder/nb_path.name)
    client = NotebookClient(nb, kernel_name=kernel, timeout=timeout, resources={'metadata': {'path': str(folder)}})
    sampler,t,row = TreePeak(),time.time(),dict(chapter=nb_path.stem, result='pass', error='')
    sampler.start()
    try:
        with open(folder/'kernel.log', 'w') as log: client.execute(cwd=str(folder), env=env, stderr=log)  # what the kernel itself prints
    except CellExecutionError as e:
        lines = [l for l in str(e).strip().splitlines() if l.strip()]
        cell = next((i for i,c in enumerate(nb.cells) if any(o.get('output_type') == 'error' for o in c.get('outputs', []))), None)
        row.update(result='fail', error=f"cell {cell}: {lines[-1][:200] if lines else type(e).__name__}")
    except (CellTimeoutError, DeadKernelError, RuntimeError) as e: row.update(result='fail', error=f'{type(e).__name__}: {str(e).splitlines()[0][:200]}')
    finally: row.update(seconds=round(time.time() - t, 1), peak_gb=round(sampler.stop(), 2))
    nbformat.write(nb, folder/nb_path.name)  # with its outputs, for a look afterwards
    return row

def table(rows:list)->str:
    out = ['| chapter | result | seconds | peak GB | where it failed |', '|---|---|---:|---:|---|']
    return '\n'.join(out + [f"| {r['chapter']} | {r['result']} | {r['seconds']:.0f} | {r['peak_gb']:.1f} | {r['error']} |" for r in rows])

def main(argv=None)->int:
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument('notebooks', nargs='*', type=Path, help='default: every notebook of nbs/ (with --quick: those of QUICK)')
    a.add_argument('--quick', action='store_true', help='the QUICK chapters, without the cells the tests skip (for CI)')
    a.add_argument('--json', type=Path, help='where to write the rows (default: benchmarks/results/reader_run.json, with --quick reader_run_quick.json)')
    a.add_argument('--torch', default='torch==2.13.0', help='the torch requirement installed first')
    a.add_argument('--venv', type=Path, help='reuse this environment (made by an earlier run) instead of a fresh one')
    a.add_argument('--keep', type=Path, help='run in this folder and keep it (wheel, environment, executed notebooks)')
    a.add_argument('--timeout', type=int, default=3600, help='seconds one cell may run')
    args = a.parse_args(argv)
    args.json = args.json or ROOT/'benchmarks'/'results'/f"reader_run{'_quick' * args.quick}.json"
    flags = set(tomllib.loads((ROOT/'pyproject.toml').read_text())['tool']['nbdev']['tst_flags'].split()) if args.quick else set()
    nbs = args.notebooks or ([ROOT/'nbs'/f'{n}.ipynb' for n in QUICK] if args.quick else
                             sorted(p for p in (ROOT/'nbs').glob('*.ipynb') if not p.name.startswith('_')))
    tmp = args.keep or Path(tempfile.mkdtemp(prefix='emo-reader-'))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        t = time.time()
        wheel = build_wheel(Path(tempfile.mkdtemp(dir=tmp)))
        venv = args.venv or tmp/'venv'
        make_env(venv, wheel, args.torch, fresh=args.venv is None)
        versions = sh(venv/'bin'/'python', '-c', 'import sys, torch; print(sys.version.split()[0], torch.__version__)').split()
        print(f'{wheel.name} installed in {venv} in {time.time() - t:.0f} s', file=sys.stderr)
        kernel = kernel_spec(tmp, venv)
        env = {k:v for k,v in os.environ.items() if k not in ('VIRTUAL_ENV', 'PYTHONPATH', 'EMO_REQUIRE_BROWSER', 'MPLBACKEND', 'JUPYTER_PATH')}
        env.update(PATH=f"{venv/'bin'}{os.pathsep}{env.get('PATH', '')}")
        rows = []
        for p in map(Path, nbs):
            rows.append(run_chapter(p.resolve(), Path(tempfile.mkdtemp(dir=tmp))/p.stem, kernel, env, flags, args.timeout))
            print(f"{rows[-1]['chapter']}: {rows[-1]['result']} in {rows[-1]['seconds']:.0f} s, peak {rows[-1]['peak_gb']:.1f} GB {rows[-1]['error']}", file=sys.stderr)
    finally:
        if not args.keep: shutil.rmtree(tmp, ignore_errors=True)
    print(table(rows))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(dict(quick=args.quick, skipped_flags=sorted(flags), wheel=wheel.name, python=versions[0], torch=versions[1],
                                         machine=f'{platform.machine()}, {os.cpu_count()} cores', when=time.strftime('%Y-%m-%d'),
                                         seconds=round(time.time() - t), rows=rows), indent=1) + '\n')
    print(f"{sum(r['result'] == 'pass' for r in rows)} passed, {sum(r['result'] != 'pass' for r in rows)} failed")
    return int(any(r['result'] != 'pass' for r in rows))

if __name__ == '__main__': sys.exit(main())
