"""Build the documentation site into `_site/` from the notebooks, here, without Quarto.

The GitHub workflow (.github/workflows/deploy.yaml) publishes the site that `nbdev-docs` builds with Quarto.
This script builds one from the same notebooks where Quarto is not installed. Each notebook goes through
nbdev's own processors (the list `nbdev-docs` runs, `FilterDefaults`), so `#| hide`, `#| echo: false`,
`show_doc` and the other directives mean what they mean there; nbconvert then renders it with its JupyterLab
template, inside a site header and the list of chapters (tools/docs_template/). Pages show the notebooks'
stored outputs: nothing is run but what `show_doc` needs, the exported cells.

The site needs no network: equations are written as MathML (latex2mathml), mermaid diagrams as SVG (mermaidx
runs mermaid itself, at build time), and Pagefind indexes the pages for the search box in the header. Each page
has its contents (its `##` and `###` headings) and links to the chapters before and after it.

    python tools/build_docs.py [--out _site] [--nbs nbs] [--workers N]

Pages are named as on the Quarto site (nbdev's `nbpath2html`: `07_data.ipynb` -> `data.html`), so links
carry over. The site is written to a temporary folder beside `--out` and renamed into place only when every
page is built: a failed build leaves the previous site as it was, and names each broken notebook in one line.
"""
import argparse, os, re, shutil, subprocess, sys, tempfile, time, warnings
from concurrent.futures import ProcessPoolExecutor
from functools import cache
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent/'docs_template'

class BuildError(Exception): "A notebook the site cannot be built from; the message names the problem in one line."

# ## The pages and their titles

def read(path:Path):
    "The notebook at `path` as nbdev reads it."
    from fastcore.nbio import read_nb
    try: return read_nb(path)
    except Exception as e: raise BuildError(f'cannot be read as a notebook ({type(e).__name__}: {one_line(e)})') from None

def one_line(e:Exception)->str: return (str(e).strip().splitlines() or [''])[0]

def inline_md(text:str)->str:
    "`text` (a title, a summary) as inline HTML: backticks become <code>, and so on."
    from nbconvert.filters.markdown_mistune import markdown2html_mistune
    return re.sub(r'^<p>(.*)</p>$', r'\1', markdown2html_mistune(text).strip(), flags=re.DOTALL)

def page_info(path:Path)->dict:
    "What the site needs to know of a notebook before building it: its page name, title and summary."
    from nbdev.config import nbpath2html
    from nbdev.frontmatter import FrontmatterProc
    from nbdev.process import NBProcessor
    nb = read(path)
    NBProcessor(nb=nb, procs=[FrontmatterProc], rm_directives=False).process()  # title: nbdev-docs' rule, the first `# ` heading
    fm = nb.frontmatter_
    if not fm.get('title'): raise BuildError('no title: no markdown cell opens with a `# ` heading')
    desc = str(fm.get('description', ''))
    return dict(nb=str(path), name=path.name, href=nbpath2html(path).name, title=str(fm['title']), description=desc,
                title_html=inline_md(str(fm['title'])), description_html=inline_md(desc) if desc else '')

def notebooks(nbs:Path)->list:
    "The notebooks of the site in order: index first, then by name; those starting with `_` are not pages."
    paths = sorted(p for p in nbs.glob('*.ipynb') if not p.name.startswith('_'))
    return sorted(paths, key=lambda p: p.name != 'index.ipynb')

# ## nbdev's processors

_run_dirs = {'export', 'exports', 'exporti', 'exec_doc'}

def _runs(cell)->bool:
    "Does `show_doc` need this cell run: an exported cell, or a `show_doc` call?"
    from nbdev.processors import _show_docs
    if cell.cell_type != 'code' or not cell.source: return False
    return bool(_run_dirs & cell.directives_.keys()) or bool(_show_docs(cell.parsed_() or []))

def _exec_exported():
    "nbdev's `exec_show_docs`, running only the exported cells and the `show_doc` calls."
    # nbdev's own also runs every cell that contains an import, tests included (a browser test importing inside an
    # `if`, say, would run in the docs build); an exported cell imports what it needs, as the module does.
    from fastcore.basics import str2bool
    from nbdev.processors import exec_show_docs
    class exec_exported(exec_show_docs):
        def __call__(self, cell):
            if not self.nb.has_docs_ or not hasattr(self, 'k') or not _runs(cell): return
            if str2bool(getattr(self.nb, 'frontmatter_', {}).get('skip_showdoc', False)): return
            self.k.cell(cell)
            if (e := self.k.exc): raise BuildError(f'{_which(cell)}: {type(e).__name__}: {one_line(e)}')
        def end(self): pass  # widget state: no exported cell makes a widget, and the page would load widget JS for none
    return exec_exported

def _which(cell)->str:
    "The cell, as a reader finds it in the notebook: its number (from 1, as nbdev-test counts) and first line of code."
    first = next((l for l in cell.source.splitlines() if l.strip() and not l.lstrip().startswith('#|')), '')
    where = f'cell {cell.nb_idx_+1}' if 'nb_idx_' in cell else 'nbdev\'s show_doc cell'
    return f'{where} ({first.strip()[:60]!r})'

@cache
def doc_procs()->list:
    "The processors `nbdev-docs` runs, less `rm_export`, and with `exec_show_docs` running only what show_doc needs."
    # rm_export removes `#| export` cells from the page, leaving their show_doc: here exported code is the lesson
    # (the paper's sentence, then the lines that implement it), so it stays, as nbdev shows `#| exports` cells.
    from nbdev.processors import FilterDefaults, exec_show_docs, rm_export
    return [_exec_exported() if p is exec_show_docs else p for p in FilterDefaults().procs() if p is not rm_export]

def process(nb):
    "`nb` through nbdev's processors, as `nbdev-docs` hands it to Quarto: `#| ` options left for Quarto are still in."
    from nbdev.process import NBProcessor
    for i,cell in enumerate(nb.cells): cell.nb_idx_ = i
    NBProcessor(nb=nb, procs=doc_procs(), rm_directives='quarto').process()
    return nb

# ## What Quarto would do with what nbdev leaves

_re_option = re.compile(r'^\s*#\|\s*([\w-]+)\s*:\s*(.*?)\s*$')

def take_options(cell)->dict:
    "Remove the leading `#| key: value` lines nbdev leaves for Quarto from a code cell (cell magics stay); return them."
    opts,keep,lines = {},[],cell.source.splitlines(True)
    while lines and ((m := _re_option.match(lines[0])) or lines[0].lstrip().startswith('%%')):
        if m: opts[m[1]] = m[2]
        else: keep.append(lines[0])
        lines.pop(0)
    cell.source = ''.join(keep+lines)
    return opts

def apply_options(cell)->bool:
    "Apply Quarto's `include`, `echo` and `output` options to a code cell; False if nothing of it is shown."
    opts = take_options(cell)
    if opts.get('include') == 'false': return False
    if opts.get('output') == 'false': cell.outputs = []
    if opts.get('echo') == 'false' or not cell.source.strip(): cell.metadata['transient'] = {'remove_source': True}
    return bool(cell.outputs) or not cell.metadata.get('transient')

_re_link_attrs = re.compile(r'\[([^\]]*)\]\(([^)\s]+)\)\{([^}]*)\}')

def link_attrs(md:str)->str:
    "Pandoc's link attributes, `[text](url){k=\"v\" .class}` (show_doc's source link), as HTML links."
    def a(m):
        attrs = ''.join(f' {k}="{v}"' for k,v in re.findall(r'([\w-]+)="([^"]*)"', m[3]))
        cls = ' '.join(re.findall(r'(?:^|\s)\.([\w-]+)', m[3]))
        return f'<a href="{m[2]}"{attrs}' + (f' class="{cls}"' if cls else '') + f'>{m[1]}</a>'
    return _re_link_attrs.sub(a, md)

def only_imports(cell)->bool:
    "Is `cell` exported code that only imports?"
    import ast
    if not {'export', 'exports', 'exporti'} & cell.get('directives_', {}).keys(): return False
    try: body = ast.parse(cell.source).body
    except SyntaxError: return False
    return bool(body) and all(isinstance(o, (ast.Import, ast.ImportFrom)) for o in body)

def for_nbconvert(nb):
    "The processed `nb` as a plain nbformat 4 notebook: options applied, frontmatter (shown by the page header) out."
    import nbformat
    from nbformat.v4.rwbase import rejoin_lines
    cells = []
    for c in nb.cells:
        if c.cell_type == 'raw': continue  # FrontmatterProc's YAML: the title and summary, in the page header
        meta = {k:v for k,v in c.get('metadata', {}).items() if k != 'execution'}  # execnb's timings of the show_doc run
        cid = c.id if 'nb_idx_' in c and 'id' in c else f'nbdev-{len(cells)}'  # cells nbdev adds have random ids
        cell = nbformat.from_dict(dict(cell_type=c.cell_type, id=cid, metadata=meta, source=c.source))
        if c.cell_type == 'markdown':
            cell.source = link_attrs(cell.source)
            if c.get('attachments'): cell.attachments = nbformat.from_dict(dict(c.attachments))  # `attachment:` pictures: inlined by nbconvert
        if c.cell_type == 'code':
            cell.update(execution_count=None, outputs=nbformat.from_dict(list(c.get('outputs', []))))
            for o in cell.outputs:
                if 'text/markdown' in o.get('data', {}): o.data['text/markdown'] = link_attrs(''.join(o.data['text/markdown']))
            if not apply_options(cell): continue
            if only_imports(c): cell.metadata['imports'] = True  # folded on the page (the template): the lesson comes first
        cells.append(cell)
    return rejoin_lines(nbformat.v4.new_notebook(cells=cells, metadata=dict(nb.metadata)))  # nbconvert's filters want strings

# ## The page

@cache
def exporter():
    "nbconvert's HTML exporter with the site's template (tools/docs_template: JupyterLab's, inside the site)."
    from jinja2 import pass_context
    from nbconvert import HTMLExporter
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath
    class SiteRenderer(IPythonRenderer):
        "nbconvert's markdown renderer, with equations as MathML and mermaid diagrams as SVG, made here."
        def __init__(self, rendering, **kw): super().__init__(**kw); self.rendering = rendering
        def block_math(self, body): return mathml(body, 'block', self.rendering) or super().block_math(body)
        def inline_math(self, body): return mathml(body, 'inline', self.rendering) or super().inline_math(body)
        def latex_environment(self, name, body):
            return mathml(f'\\begin{{{name}}}{body}\\end{{{name}}}', 'block', self.rendering) or super().latex_environment(name, body)
        def block_mermaidjs(self, code): return diagram(code, self.rendering) or super().block_mermaidjs(code)
    class SiteExporter(HTMLExporter):
        rendering = None  # the `Rendering` of the page being rendered
        @pass_context
        def markdown2html(self, context, source):
            "Markdown (cells, and outputs such as show_doc's) as nbconvert renders it, through `SiteRenderer`, then `fix_markdown`."
            r = SiteRenderer(self.rendering, escape=False, attachments=context.get('cell', {}).get('attachments', {}),
                             anchor_link_text=self.anchor_link_text, exclude_anchor_links=self.exclude_anchor_links, **self.lexer_options)
            return fix_markdown(MarkdownWithMath(renderer=r).render(source), self.rendering)
    return SiteExporter(template_name=TEMPLATE.name, extra_template_basedirs=[str(TEMPLATE.parent)],
                        exclude_input_prompt=True, exclude_output_prompt=True)

def mathml(tex:str, display:str, rendering)->str:
    "The equation `tex` as MathML, which browsers draw themselves; '' (and a problem of the `rendering`) if it cannot be."
    from latex2mathml.converter import convert
    try: m = convert(tex, display=display)
    except Exception as e: m,why = '',f'{type(e).__name__} {one_line(e)}'.strip()
    else: why = ', '.join(re.findall(r'>(\\[A-Za-z]+)<', m))  # a command latex2mathml does not know stays as text
    if why: rendering.problems.append(f'equation ${tex.strip()}$: {why}'); return ''
    return m

def diagram(code:str, rendering)->str:
    "The mermaid diagram `code` drawn as SVG by mermaid itself (mermaidx runs it here); '' (and a problem of the `rendering`) if it cannot be."
    import mermaidx
    try: svg = mermaidx.render(code).svg()
    except Exception as e: rendering.problems.append(f'diagram: {type(e).__name__}: {one_line(e)}'); return ''
    rendering.diagrams += 1  # mermaidx names every SVG `my-svg`, its style rules too: two on a page must not share a name
    return f'<div class="diagram">{svg.replace("my-svg", f"diagram-{rendering.diagrams}")}</div>'

def pandoc_id(text:str, seen:dict)->str:
    "A heading's id as pandoc makes it, so Quarto's anchors (and nbdev's links to show_doc headings) hold here too."
    s = re.sub(r'\s+', '-', re.sub(r'[^\w\s.-]', '', text.strip().lower()))
    s = re.sub(r'^[\W\d_]+', '', s) or 'section'
    n = seen.get(s, -1)+1; seen[s] = n
    return f'{s}-{n}' if n else s

_re_scheme = re.compile(r'^([a-z][a-z0-9+.-]*:|//|/)', re.I)

class Rendering:
    "What rendering one page gathers: its links and images pointed at the site, local files to copy, headings, problems."
    def __init__(self, page:dict, pages:list, site:dict):
        self.nb_dir,self.site = Path(page['nb']).parent.resolve(),site
        self.by_nb = {Path(p['nb']).resolve(): p['href'] for p in pages}
        self.hrefs = {p['href'] for p in pages}
        self.problems,self.files,self.ids,self.contents,self.diagrams = [],set(),{},[],0

    def href(self, href:str)->str:
        "`href` as the site page should have it."
        from urllib.parse import unquote
        doc = self.site['doc_url']
        if doc and href.startswith(doc) and href[len(doc):].partition('#')[0] in self.hrefs: return href[len(doc):]
        if href.startswith('#') or _re_scheme.match(href): return href
        path,hash_,frag = href.partition('#')
        if path in self.hrefs: return href  # a page of the site already
        target = (self.nb_dir/unquote(path)).resolve()
        if target.suffix == '.ipynb':
            if target in self.by_nb: return self.by_nb[target]+hash_+frag
            self.problems.append(f'link to {path}: no such chapter'); return href
        return self.local(href, path, target, 'link to')

    def local(self, href:str, path:str, target:Path, what:str)->str:
        "A local file: copied along if it is in nbs/, a link to it on GitHub if elsewhere in the repository."
        nbs,root = Path(self.site['nbs']).resolve(),Path(self.site['root']).resolve()
        if not target.exists(): self.problems.append(f'{what} {path}: no such file')
        elif target.is_relative_to(nbs): self.files.add(target.relative_to(nbs).as_posix())
        elif target.is_relative_to(root) and self.site['repo']:
            return f"{self.site['repo']}/blob/{self.site['branch']}/{target.relative_to(root).as_posix()}"
        else: self.problems.append(f'{what} {path}: outside the repository')
        return href

    def src(self, src:str)->str:
        "An image's `src` as the site page should have it."
        from urllib.parse import unquote
        if _re_scheme.match(src): return src
        return self.local(src, src, (self.nb_dir/unquote(src)).resolve(), 'image')

def fix_markdown(html:str, rendering:Rendering)->str:
    "Rendered markdown with headings' ids as pandoc's (`##` and `###` into the page's contents), links at the site's pages, local images copied along."
    if not re.search(r'<(h[1-6]|a|img)\b', html): return html
    from bs4 import BeautifulSoup
    soup = BeautifulSoup(html, 'html.parser', multi_valued_attributes=None)  # class lists: slower, and not needed
    for h in soup.find_all(re.compile('^h[1-6]$'), id=True):  # nbconvert's own ids keep case and punctuation
        text = h.get_text().rstrip('¶').strip()
        h['id'] = pandoc_id(text, rendering.ids)
        if (a := h.find('a', class_='anchor-link')): a['href'] = '#'+h['id']
        if h.name in ('h2', 'h3'): rendering.contents.append(dict(level=int(h.name[1]), id=h['id'], text=text))
    for a in soup.find_all('a', href=True): a['href'] = rendering.href(a['href'])
    for img in soup.find_all('img', src=True): img['src'] = rendering.src(img['src'])
    return str(soup)

def build_page(page:dict, pages:list, site:dict, out:str)->tuple:
    "Write `page`'s HTML into `out`; return (problems, local files it uses, relative to nbs/)."
    nb = for_nbconvert(process(read(Path(page['nb']))))
    nb.metadata['title'] = re.sub('`', '', page['title']) + ('' if page['href'] == 'index.html' else f" – {site['name']}")
    exp = exporter(); exp.rendering = r = Rendering(page, pages, site)
    i = pages.index(page); prev,next_ = pages[i-1] if i else None, pages[i+1] if i+1 < len(pages) else None
    contents = lambda: r.contents  # gathered while the page renders; a function, as nbconvert renders a deep copy of `resources`
    resources = dict(site=dict(site, pages=pages, page=page, prev=prev, next=next_, contents=contents), metadata=dict(name=Path(page['nb']).stem))
    html,_ = exp.from_notebook_node(nb, resources=resources)
    (Path(out)/page['href']).write_text(html, encoding='utf-8')
    return r.problems, sorted(r.files)

def _build_page(args)->tuple:
    "`build_page` in a worker: (error line or None, problems, files)."
    page,main = args[0],sys.modules['__main__']
    try: return None, *build_page(*args)
    except BuildError as e: return f"{page['rel']}: {e}", [], []
    except Exception as e: return f"{page['rel']}: {type(e).__name__}: {one_line(e)}", [], []
    finally: sys.modules['__main__'] = main  # show_doc's IPython shell made itself __main__; the next job is found in ours

def _init_worker(root:str):
    "A worker runs cells as nbdev-docs' do: from the project root, with IN_TEST set, figures off screen."
    os.chdir(root); os.environ.update(IN_TEST='1', MPLBACKEND='Agg')
    warnings.simplefilter('ignore')  # libraries' deprecation notes are not the build's to report

# ## The site

def site_info(nbs:Path, index:dict)->dict:
    "The site's name and links, from the project's nbdev settings (pyproject.toml)."
    from nbdev.config import get_config
    cfg = get_config(nbs)
    return dict(name=index['title'] if index else cfg.title, summary=cfg.get('description', ''), repo=cfg.get('git_url', ''),
                branch=cfg.get('branch', 'main'), doc_url=cfg.get('doc_url', ''), nbs=str(nbs), root=str(cfg.config_path))

def write_assets(out:Path, nbs:Path, files:set):
    "The stylesheets, and the local files the pages use (nbs/images/...), beside the pages."
    lab = next(Path(d) for d in exporter().template_paths if (Path(d)/'static'/'index.css').exists())
    (out/'jupyter.css').write_text((lab/'static'/'index.css').read_text() + (lab/'static'/'theme-light.css').read_text())
    shutil.copy(TEMPLATE/'site.css', out/'site.css')
    for f in sorted(files):
        (out/f).parent.mkdir(parents=True, exist_ok=True); shutil.copy(nbs/f, out/f)

def index_search(site:Path)->str:
    "Index the pages for the search box (Pagefind writes its index and scripts into site/pagefind/); an error line, or ''."
    r = subprocess.run([sys.executable, '-m', 'pagefind', '--site', str(site), '--exclude-selectors', 'a.anchor-link'],  # headings' ¶
                       capture_output=True, text=True)
    if r.returncode == 0: return ''
    err = [l for l in (r.stderr+r.stdout).splitlines() if l.strip()]
    return f"search index (pagefind): {err[-1] if err else f'exit status {r.returncode}'}"

def swap_in(tmp:Path, out:Path):
    "Put the finished site at `out`, only now moving the old one away."
    old = out.with_name(f'.{out.name}.old-{os.getpid()}')
    if out.exists(): out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)

def build(nbs:Path, out:Path, workers:int)->int:
    "Build the site from `nbs` into `out`; the exit status (1: nothing written, the broken notebooks named)."
    t,errors,pages,shown = time.time(),[],[],out
    nbs,out = nbs.resolve(),out.resolve()  # the workers run from the project root
    for path in notebooks(nbs):
        try: pages.append(page_info(path) | dict(rel=os.path.relpath(path)))
        except BuildError as e: errors.append(f'{os.path.relpath(path)}: {e}')
    clash = {p['href']: p for p in pages}
    errors += [f"{p['rel']}: its page {p['href']} is also {clash[p['href']]['rel']}'s" for p in pages if clash[p['href']] is not p]
    if not pages: errors.append(f'{os.path.relpath(nbs)}: no notebooks')
    if errors: return report(errors)
    site = site_info(nbs, pages[0] if pages[0]['name'] == 'index.ipynb' else None)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{out.name}.building-', dir=out.parent)); tmp.chmod(0o755)
    try:
        jobs = sorted(((p, pages, site, str(tmp)) for p in pages), key=lambda j: -Path(j[0]['nb']).stat().st_size)  # big ones first
        results = dict(zip((j[0]['href'] for j in jobs), run(jobs, workers, site['root'])))
        results = [results[p['href']] for p in pages]
        errors = [e for e,_,_ in results if e]
        if errors: return report(errors)
        for p,(_,problems,_) in zip(pages, results):
            for o in problems: print(f"warning: {p['rel']}: {o}", file=sys.stderr)
        write_assets(tmp, nbs, {f for _,_,fs in results for f in fs})
        if (e := index_search(tmp)): print(f'{e}\nno site written', file=sys.stderr); return 1
        swap_in(tmp, out)
    finally: shutil.rmtree(tmp, ignore_errors=True)
    print(f'built {len(pages)} pages into {shown} in {time.time()-t:.1f} s')
    return 0

def run(jobs:list, workers:int, root:str):
    "`_build_page` over `jobs`, in `workers` processes (1: in this one)."
    if workers <= 1:
        cwd = os.getcwd(); _init_worker(root)
        try: return [_build_page(j) for j in jobs]
        finally: os.chdir(cwd)
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(root,)) as ex: return list(ex.map(_build_page, jobs))

def report(errors:list)->int:
    "Name every broken notebook, one line each; the exit status."
    print(*errors, sep='\n', file=sys.stderr)
    print(f'no site written: {len(errors)} notebook{"s"*(len(errors)>1)} to fix', file=sys.stderr)
    return 1

def main(argv=None)->int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', default='_site', help='the site folder (replaced only when the build succeeds)')
    p.add_argument('--nbs', default='nbs', help='the notebooks folder')
    p.add_argument('--workers', type=int, default=min(4, os.cpu_count() or 1), help='processes (1: none)')
    a = p.parse_args(argv)
    return build(Path(a.nbs), Path(a.out), a.workers)

if __name__ == '__main__': sys.exit(main())
