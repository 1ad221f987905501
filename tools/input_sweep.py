#!/usr/bin/env python
"""Bad-input sweep of the six commands (emo-generate, emo-preprocess, emo-train, emo-eval, emo-world, emo-demo): a
regression check for the rule

    every option of every command is validated up front; every error path ends in exit code != 0 with one clear
    line naming the file and the problem, no traceback; nothing a user made is lost or half-written;
    nothing untrusted is executed.

    python tools/input_sweep.py                                  # all cases, ~10 min on 2 cores
    python tools/input_sweep.py --only eval,demo -k port         # some of them
    python tools/input_sweep.py --list                           # the cases, without running them
    python tools/input_sweep.py --fresh                          # one new interpreter per case (exact, ~2x slower)

Fixtures (tiny audio, images, synthetic talking-head videos, a tiny saved pipeline, tiny training runs, real and
generated videos to compare) are built in a temporary folder; every case runs one of the installed console scripts
(`.venv/bin/emo-*`) as a subprocess, with HF_HUB_OFFLINE=1, an empty HF_HOME, its own TMPDIR, and HTTP(S)_PROXY pointing
at a local listener that records any connection attempt (a case may add variables, e.g. NO_PROXY for a server's look at
its own page). By default a case is a fork of a "zygote" process that has already imported emo_repro (it then runs the
console script with runpy, as `python .venv/bin/emo-x ...` would): the ~6 s import is paid once instead of once per
case. `--fresh` runs the console scripts themselves.

Outcomes (worst first; a case passes when it is OK, or CLEAR for an input that must be refused):
  EXECUTED   a planted pickle ran (its marker file appeared)
  NETWORK    the command tried to connect somewhere
  HANG       it ran past its timeout and was killed
  LEFTOVER   temp files, half outputs or processes remained, or a previous output / an input was changed
  CRASH      it died of a signal it was not sent
  TRACEBACK  exit != 0 with a Python traceback
  SILENT     exit 0 on an input that should have been refused, or a wrong output (e.g. the wrong frame count)
  LATE       refused clearly, but only after writing outputs (not validated up front)
  UNCLEAR    exit != 0, no traceback, but the last line names neither the file nor the option
  REFUSED    a valid input was refused (exit != 0 without a traceback)
  NOFIXTURE  a fixture the case needs could not be built (see the note);  SKIP: not possible here (e.g. no mount)
  CLEAR      exit != 0, no traceback, the last line names the file/option
  OK         the input is valid and the command succeeded with sane output (or, for a kill case, nothing was left;
             emo-demo's valid starts are kill cases: it serves its page until it is stopped)

Results are printed as a markdown table and written (atomically) as JSON to --out.
"""
from __future__ import annotations
import argparse, contextlib, hashlib, json, os, pickle, re, shutil, signal, socket, subprocess, sys, tempfile
import threading, time, wave
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO/'.venv'/'bin'
COMMANDS = ('generate', 'preprocess', 'train', 'eval', 'world', 'demo')
FPS, SR = 25, 16000

# Re-run under the project's venv when started by another interpreter (the fixtures need emo_repro).
try: import emo_repro  # noqa: F401
except ImportError:
    py = VENV_BIN/'python'
    if py.exists() and Path(sys.executable).resolve() != py.resolve(): os.execv(str(py), [str(py), *sys.argv])
    raise

import numpy as np

def script(cmd:str)->str:
    p = VENV_BIN/f'emo-{cmd}'
    return str(p if p.exists() else shutil.which(f'emo-{cmd}') or p)

# ---------------------------------------------------------------------------------------------------------------------
# Running commands: fresh processes, or forks of a zygote that has imported emo_repro

class FreshProc:
    def __init__(self, cmd, args, cwd, out, err, env):
        with open(out, 'wb') as fo, open(err, 'wb') as fe:
            self.p = subprocess.Popen([script(cmd), *args], cwd=cwd, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL,
                                      env=env, start_new_session=True)
        self.pid = self.p.pid
    def wait(self, timeout:float):
        try: return self.p.wait(timeout)
        except subprocess.TimeoutExpired: return None

class FreshRunner:
    mode = 'fresh'
    def __init__(self, env): self.env = env
    def spawn(self, cmd, args, cwd, out, err, env=None): return FreshProc(cmd, args, cwd, out, err, {**self.env, **(env or {})})
    def close(self): pass

ZYGOTE = r'''
import json, os, sys, runpy, time, traceback
req_fd, resp_fd = int(sys.argv[1]), int(sys.argv[2])
def send(**kw): os.write(resp_fd, (json.dumps(kw) + '\n').encode())
t0 = time.time()
try:
    import emo_repro.data, emo_repro.training, emo_repro.inference, emo_repro.eval, emo_repro.world, emo_repro.demo
    for m in ('mediapipe', 'yaml'):
        try: __import__(m)
        except Exception: pass
except BaseException:
    send(ready=False, error=traceback.format_exc()); sys.exit(1)
send(ready=True, seconds=round(time.time() - t0, 1))
rf = os.fdopen(req_fd, 'r')
def child(req):
    os.setsid()
    os.close(resp_fd); rf.close()
    os.chdir(req['cwd']); os.environ.update(req['env'])
    fds = [os.open(os.devnull, os.O_RDONLY)] + [os.open(req[k], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644) for k in ('stdout', 'stderr')]
    for i,fd in enumerate(fds): os.dup2(fd, i); os.close(fd)
    sys.argv = [req['script'], *req['args']]
    sys.path[0] = os.path.dirname(req['script'])
    runpy.run_path(req['script'], run_name='__main__')   # the console script ends in sys.exit(...)
    sys.exit(0)
for line in rf:
    req = json.loads(line)
    if req['op'] == 'spawn':
        sys.stdout.flush(); sys.stderr.flush()
        pid = os.fork()
        if pid == 0: child(req)  # SystemExit or an uncaught exception ends the child as it would a fresh interpreter
        send(pid=pid)
    elif req['op'] == 'wait':
        deadline,rc = time.time() + req['timeout'],None
        while True:
            try: p,status = os.waitpid(req['pid'], os.WNOHANG)
            except ChildProcessError: rc = -999; break
            if p: rc = os.waitstatus_to_exitcode(status); break
            if time.time() >= deadline: break
            time.sleep(0.05)
        send(rc=rc)
'''

class ZygoteProc:
    def __init__(self, z, pid): self.z,self.pid = z,pid
    def wait(self, timeout:float): return self.z.request(op='wait', pid=self.pid, timeout=max(0., timeout))['rc']

class ZygoteRunner:
    mode = 'zygote'
    def __init__(self, env, cwd, log):
        req_r,self.req_w = os.pipe(); self.resp_r,resp_w = os.pipe()
        self.log = open(log, 'wb')
        self.p = subprocess.Popen([str(VENV_BIN/'python') if (VENV_BIN/'python').exists() else sys.executable, '-c', ZYGOTE,
                                   str(req_r), str(resp_w)], pass_fds=(req_r, resp_w), cwd=cwd, env=env,
                                  stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        os.close(req_r); os.close(resp_w)
        self.resp = os.fdopen(self.resp_r, 'r')
    def ready(self)->dict:
        line = self.resp.readline()
        return json.loads(line) if line else dict(ready=False, error='the zygote exited during its imports')
    def request(self, **kw)->dict:
        os.write(self.req_w, (json.dumps(kw) + '\n').encode())
        line = self.resp.readline()
        if not line: raise RuntimeError('the zygote died')
        return json.loads(line)
    def spawn(self, cmd, args, cwd, out, err, env=None):
        return ZygoteProc(self, self.request(op='spawn', script=script(cmd), args=list(args), cwd=str(cwd),
                                             stdout=str(out), stderr=str(err), env=env or {})['pid'])
    def close(self):
        with contextlib.suppress(OSError): os.close(self.req_w)
        with contextlib.suppress(Exception): self.p.wait(5)
        if self.p.poll() is None: self.p.kill()
        self.log.close()

# ---------------------------------------------------------------------------------------------------------------------
# Processes, files, the network

def session_procs(sid:int)->list:
    "Live (non-zombie) processes of session `sid` (every case runs in a new session)."
    found = []
    for d in os.listdir('/proc'):
        if not d.isdigit(): continue
        try: stat = Path(f'/proc/{d}/stat').read_text()
        except OSError: continue
        rest = stat[stat.rindex(')') + 2:].split()
        if int(rest[3]) == sid and rest[0] not in 'ZX': found.append(int(d))
    return found

def proc_desc(pid:int)->str:
    try: return f"{pid} " + Path(f'/proc/{pid}/cmdline').read_bytes().replace(b'\0', b' ').decode(errors='replace')[:80]
    except OSError: return str(pid)

def kill_session(sid:int):
    with contextlib.suppress(OSError): os.killpg(sid, signal.SIGKILL)
    for p in session_procs(sid):
        with contextlib.suppress(OSError): os.kill(p, signal.SIGKILL)

def lingering(sid:int, grace:float)->list:
    "Processes of session `sid` still alive after `grace` seconds."
    end = time.time() + grace
    while (ps := session_procs(sid)) and time.time() < end: time.sleep(0.2)
    return ps

LOCK = re.compile(r'(^|[.-])lock$', re.I)  # lock files hold a pid, not user data: folder digests skip them

def digest(p)->object:
    "Content of a file or folder tree (lock files left out), for 'unchanged byte-for-byte' checks."
    p = Path(p)
    if p.is_symlink(): return ('link', os.readlink(p))
    if p.is_file(): return hashlib.sha256(p.read_bytes()).hexdigest()
    if p.is_dir(): return tuple((str(q.relative_to(p)), digest(q) if q.is_file() else 'dir') for q in sorted(p.rglob('*'))
                                if not LOCK.search(q.name))
    return None

def is_temp(name:str)->bool:
    return (name.startswith('.') and ('tmp' in name.lower() or '.old-' in name)) or name.endswith(('.tmp', '.part', '.incomplete'))

def temp_files(root)->set:
    root = Path(root)
    if not root.is_dir(): return set()
    out = set()
    for dp,dns,fns in os.walk(root):
        for n in dns + fns:
            if is_temp(n): out.add(str(Path(dp, n).relative_to(root)))
    return out

class NetTrap:
    "A local 'proxy' that records every connection attempt and closes it."
    def __init__(self):
        self.s = socket.socket(); self.s.bind(('127.0.0.1', 0)); self.s.listen(16)
        self.port,self.hits = self.s.getsockname()[1],[]
        threading.Thread(target=self._loop, daemon=True).start()
    def _loop(self):
        while True:
            try: c,_ = self.s.accept()
            except OSError: return
            c.settimeout(0.5)
            try: first = c.recv(200).split(b'\r\n')[0].decode(errors='replace')
            except OSError: first = '?'
            self.hits.append(first); c.close()

# ---------------------------------------------------------------------------------------------------------------------
# Fixtures

class FixtureError(Exception): pass

def _wav(path, wave_:np.ndarray, sr:int=SR, channels:int=1):
    x = (np.clip(wave_, -1, 1) * 32767).round().astype('<i2')
    with wave.open(str(path), 'wb') as w:
        w.setnchannels(channels); w.setsampwidth(2); w.setframerate(sr); w.writeframes(x.tobytes())

def _encode(path, wave_:np.ndarray, sr:int, codec:str, fmt:str):
    import av
    with av.open(str(path), 'w', format=fmt) as c:
        s = c.add_stream(codec, rate=sr, layout='mono')
        fr = av.AudioFrame.from_ndarray(np.asarray(wave_, np.float32)[None], format='fltp', layout='mono')
        fr.sample_rate,fr.pts = sr,0
        for p in s.encode(fr): c.mux(p)
        for p in s.encode(None): c.mux(p)

class Fixtures:
    def __init__(self, sweep): self.sw,self.root,self._memo,self.records = sweep,sweep.root/'fixtures',{},{}
    def record(self, name:str)->'Record':
        "The record of the command that made fixture `name`, even when it failed."
        try: return self.get(name)[0]
        except FixtureError:
            if name in self.records: return self.records[name]
            raise
    def get(self, name:str):
        if name not in self._memo:
            t = time.time()
            try: self._memo[name] = (True, getattr(self, name)())
            except FixtureError as e: self._memo[name] = (False, str(e))
            except Exception as e: self._memo[name] = (False, f"{type(e).__name__}: {e}")
            log(f"  fixture {name}: {'ok' if self._memo[name][0] else 'FAILED: ' + self._memo[name][1][:200]} ({time.time()-t:.1f} s)")
        ok,v = self._memo[name]
        if not ok: raise FixtureError(f"fixture {name}: {v}")
        return v

    def media(self)->Path:
        "Audio and image inputs, good and bad."
        from PIL import Image
        from emo_repro.core import asset
        from emo_repro.video import write_video
        d = self.root/'media'; d.mkdir(parents=True)
        with wave.open(str(asset('speech_en.wav'))) as w: sr,speech = w.getframerate(),np.frombuffer(w.readframes(w.getnframes()), '<i2') / 32767
        assert sr == SR, sr
        s1 = speech[SR//2:SR//2 + SR].astype(np.float32)                      # 1 s of real speech
        shutil.copy(asset('speech_en.wav'), d/'speech6s.wav')
        _wav(d/'a1.wav', s1); _wav(d/'silent.wav', np.zeros(SR)); _wav(d/'zero.wav', np.zeros(0))
        _wav(d/'short10ms.wav', s1[:SR//100])
        _wav(d/'stereo.wav', np.stack([s1, s1[::-1]], 1).reshape(-1), channels=2)
        t = np.arange(SR) / SR
        _wav(d/'a44k.wav', np.interp(np.arange(44100) / 44100, t, s1), sr=44100)
        _wav(d/'a8k.wav', np.interp(np.arange(8000) / 8000, t, s1), sr=8000)
        _encode(d/'a1.mp3', s1, SR, 'libmp3lame', 'mp3'); _encode(d/'a1.m4a', s1, SR, 'aac', 'ipod'); _encode(d/'a1.flac', s1, SR, 'flac', 'flac')
        (d/'empty.wav').write_bytes(b''); (d/'corrupt.wav').write_bytes(b'RIFF\x10\x00\x00\x00WAVEfmt ' + os.urandom(3000))
        grey = np.full((25, 64, 64, 3), 128, np.uint8)
        write_video(d/'noaudio.mp4', grey); write_video(d/'speech.mp4', grey, audio=s1)
        astro = Image.open(asset('astronaut.png')).convert('RGB'); astro.save(d/'astronaut.png')
        (d/'empty.png').write_bytes(b''); raw = asset('astronaut.png').read_bytes(); (d/'truncated.png').write_bytes(raw[:len(raw)//2])
        (d/'imgdir.png').mkdir()
        Image.new('RGB', (256, 256), (128, 128, 128)).save(d/'grey.png')
        astro.resize((16, 16), Image.LANCZOS).save(d/'tiny16.png')
        astro.convert('L').save(d/'gray_L.png')
        rgba = astro.convert('RGBA'); a = np.full((512, 512), 255, np.uint8); a[:40] = 0; rgba.putalpha(Image.fromarray(a)); rgba.save(d/'rgba.png')
        astro.convert('CMYK').save(d/'cmyk.jpg', quality=95)
        Image.fromarray(np.asarray(astro.convert('L')).astype(np.uint16) * 257).save(d/'gray16.png')
        rot = astro.transpose(Image.Transpose.ROTATE_90); ex = Image.Exif(); ex[0x0112] = 6  # displayed upright after a 90° turn
        rot.save(d/'exif_rotated.jpg', exif=ex.tobytes(), quality=95)
        try:
            from emo_repro.portraits import find_face
            x0,y0,x1,y1 = map(float, find_face(np.asarray(astro)))
        except Exception: x0,y0,x1,y1 = 178., 69., 273., 177.       # the astronaut's face box today
        m = 0.12 * (y1 - y0); face = astro.crop((int(x0-m), int(y0-m), int(x1+m), int(y1+m)))
        face = face.resize((round(400 * face.width / face.height), 400), Image.LANCZOS)
        wide = Image.new('RGB', (2000, 400), (110, 110, 110)); wide.paste(face, ((2000 - face.width)//2, 0)); wide.save(d/'wide2000x400.png')
        return d

    def weights(self)->Path:
        "A tiny EMOPipeline.save_pretrained folder, and broken copies of it."
        from emo_repro.inference import EMOPipeline
        d = self.root/'weights'; d.mkdir(parents=True)
        EMOPipeline.tiny().save_pretrained(d/'good')
        shutil.copytree(d/'good', d/'bad_index'); (d/'bad_index'/'model_index.json').write_text('{"_class_name": "EMOPipeline", "unet": [')
        shutil.copytree(d/'good', d/'truncated')
        st = max((d/'truncated').rglob('*.safetensors'), key=lambda p: p.stat().st_size)
        with open(st, 'r+b') as f: f.truncate(st.stat().st_size // 2)
        (d/'empty').mkdir()
        return d

    def _videos(self, name, n, seed)->Path:
        from emo_repro.synthetic import make_synthetic_talking_heads
        d = self.root/name
        make_synthetic_talking_heads(d, num_videos=n, seconds=1.0, size=96, seed=seed)
        for p in d.glob('*.truth.npz'): p.unlink()
        return d

    def vids_good(self)->Path: return self._videos('vids_good', 2, 0)
    def vids_many(self)->Path: return self._videos('vids_many', 6, 1)

    def vids_mixed(self)->Path:
        "2 good synthetic videos, plus corrupt, empty, face-less, 1-frame and silent (no audio stream) ones."
        from emo_repro.video import write_video
        from emo_repro.synthetic import random_identity, synthetic_talking_head, speech_excerpt
        d = self.root/'vids_mixed'; d.mkdir(parents=True)
        for p in self.get('vids_good').glob('*.mp4'): shutil.copy(p, d/p.name)
        (d/'corrupt.mp4').write_bytes(b'\x00\x00\x00\x18ftypmp42' + os.urandom(5000)); (d/'empty.mp4').write_bytes(b'')
        rng = np.random.default_rng(7); wave_ = speech_excerpt(1.0, rng)
        frames,_ = synthetic_talking_head(random_identity(rng), wave_, 1.0, 96, rng)
        write_video(d/'faceless.mp4', np.full_like(frames, 128), audio=wave_)
        write_video(d/'oneframe.mp4', frames[:1], audio=wave_[:SR//FPS])
        write_video(d/'noaudio.mp4', frames)
        return d

    def _cmd(self, name, cmd, args, cwd, timeout)->'Record':
        "Run the command that makes fixture `name`; its record."
        rec = self.records[name] = self.sw.execute(cmd, args, cwd, timeout)
        if rec.rc != 0: raise FixtureError(f"emo-{cmd} {' '.join(args)} -> exit {rec.rc}: {rec.last_line}")
        return rec

    def ds_train(self)->tuple:
        "emo-preprocess of vids_good at 64 px: the training data of every emo-train case."
        d = self.root/'ds_train'; vids = self.get('vids_good')
        rec = self._cmd('ds_train', 'preprocess', [str(vids), str(d), '--size', '64', '--workers', '1'], self.root, 150)
        rows = [json.loads(l) for l in (d/'manifest.jsonl').read_text().splitlines() if l.strip()]
        if len(rows) != 2 or any(r.get('status') != 'done' for r in rows): raise FixtureError(f"{d}/manifest.jsonl: {rows}")
        return rec,d

    def run_s1(self)->tuple:
        d = self.root/'run_s1'; ds = self.get('ds_train')[1]
        rec = self._cmd('run_s1', 'train', ['--stage', '1', '--data', str(ds), '--out', str(d), '--max-steps', '1'], self.root, 180)
        if not list(d.glob('checkpoint-*/train_state.json')): raise FixtureError(f"{d}: no checkpoint")
        return rec,d

    def ema_config(self)->Path:
        p = self.root/'ema.yaml'; self.root.mkdir(parents=True, exist_ok=True)
        p.write_text('ema_decay: 0.9\ncheckpoint_every: 1\nmax_steps: 2\npreview_every: 0\n'); return p

    def run_ema(self)->tuple:
        d = self.root/'run_ema'; ds = self.get('ds_train')[1]
        rec = self._cmd('run_ema', 'train', ['--stage', '1', '--data', str(ds), '--out', str(d), '--config', str(self.get('ema_config'))],
                        self.root, 180)
        if len(list(d.glob('checkpoint-*/train_state.json'))) < 2: raise FixtureError(f"{d}: expected 2 checkpoints")
        return rec,d

    def killed_preprocess(self)->tuple:
        "emo-preprocess --workers 2 killed (SIGKILL, main process only) once its workers are busy."
        vids = self.get('vids_many'); d = self.root/'killed'; d.mkdir(parents=True); ds = d/'ds'
        args = [str(vids), str(ds), '--size', '64', '--workers', '2']
        ready = lambda h: len(session_procs(h.pid)) >= 3 and (ds/'videos').is_dir()
        rec = self.records['killed_preprocess'] = self.sw.execute('preprocess', args, d, 120, kill_when=ready, kill_delay=0.7, kill_grace=8.0)
        return rec,ds

    def eval_vids(self)->Path:
        "real/ and fake/ (each head_000.mp4, head_001.mp4: two synthetic people, two others as their 'generated' videos), silent/head_000.mp4 (no sound)."
        from emo_repro.video import read_video, write_video
        d = self.root/'eval'
        for sub,src in (('real', 'vids_good'), ('fake', 'vids_many')):
            (d/sub).mkdir(parents=True)
            for n in ('head_000.mp4', 'head_001.mp4'): shutil.copy(self.get(src)/n, d/sub/n)
        (d/'silent').mkdir(); write_video(d/'silent'/'head_000.mp4', read_video(d/'fake'/'head_000.mp4'))
        return d

# ---------------------------------------------------------------------------------------------------------------------
# Cases

@dataclass
class Spec:
    args:list                      # command-line arguments
    names:tuple = ()               # the last line of a refusal must contain one of these (case-insensitive)
    ok_check:object = None         # fn(record) -> problem | None, after exit 0: a problem makes it SILENT
    keep:list = field(default_factory=list)      # paths that must be byte-for-byte the same afterwards (else LEFTOVER)
    untouched:list = field(default_factory=list) # paths that must not appear or change when the command refuses (else LATE)
    no_paths:list = field(default_factory=list)  # paths that must not exist afterwards, whatever the exit code (else LEFTOVER)
    after:object = None            # fn(rec) -> problem | None, always: a problem makes it LEFTOVER
    marker:Path|None = None        # a planted pickle's marker file
    kill_when:object = None        # fn(handle) -> bool: SIGKILL the main process then (expect 'killed')
    kill_delay:float = 0.
    driver:object = None           # fn(sweep, case_ctx, spec) -> Record: a case that runs several commands
    cwd:Path|None = None
    env:dict|None = None           # environment variables the command gets besides the sweep's
    timeout:float|None = None
    skip:str|None = None           # reason the case cannot run here

@dataclass
class Case:
    cmd:str; name:str; expect:str; make:object
    @property
    def key(self): return f"{self.cmd}: {self.name}"

CASES = []
def case(cmd, name, expect='error'):
    def deco(f): CASES.append(Case(cmd, name, expect, f)); return f
    return deco

def add(cmd, name, expect, make): CASES.append(Case(cmd, name, expect, make))

class Ctx:
    "What a case's `make` sees: its own empty folder, fixtures, mounts."
    def __init__(self, sweep, d:Path): self.sw,self.dir,self.fx = sweep,d,sweep.fixtures.get
    def mount(self, name:str, size:str='1m', ro:bool=False, leave:int|None=None)->Path:
        "A tmpfs of `size` at dir/name (read-only if `ro`; filled to `leave` bytes free); raises Skip if impossible."
        p = self.dir/name; p.mkdir()
        r = subprocess.run(['mount', '-t', 'tmpfs', '-o', f"size={size}{',ro' if ro else ''}", 'tmpfs', str(p)], capture_output=True, text=True)
        if r.returncode: raise Skip(f"cannot mount a tmpfs here ({r.stderr.strip() or r.returncode})")
        self.sw.mounts.append(p)
        if leave is not None:
            st = os.statvfs(p); free = st.f_bavail * st.f_frsize
            with open(p/'.filler', 'wb') as f: f.write(b'\0' * max(0, free - leave))
        return p

class Skip(Exception): pass

def M(c:Ctx, name:str)->str: return str(c.fx('media')/name)

def shipped_size()->int:
    "Side of the videos the default weights make ('synthetic', shipped: trained at the synthetic preset's resolution)."
    from emo_repro.presets import preset
    return preset('synthetic').training['resolution']

def mp4_check(path, frames:int|None, size:int|None=None, audio:bool=True):
    "fn() -> problem|None: `path` is an MP4 of `frames` frames of size x size (default: the shipped weights'), with sound."
    def check(rec=None):
        import av
        p,side = Path(path),size or shipped_size()
        if not p.is_file(): return f"no output at {p.name}"
        try:
            with av.open(str(p)) as c:
                if not c.streams.video: return f"{p.name}: no video stream"
                has_audio = bool(c.streams.audio)
                fr = [f for f in c.decode(video=0)]
        except Exception as e: return f"{p.name}: unreadable MP4 ({e})"
        if not fr: return f"{p.name}: no frames"
        if (fr[0].width, fr[0].height) != (side, side): return f"{p.name}: {fr[0].width}x{fr[0].height}, expected {side}x{side}"
        if frames is not None and len(fr) != frames: return f"{p.name}: {len(fr)} frames, expected {frames} (round(duration*{FPS}))"
        if audio and not has_audio: return f"{p.name}: no audio stream"
        return None
    return check

# ----- emo-generate

G = {'--steps': '1', '--guidance': '1'}  # the cheapest run: 1 DDIM step, no guidance (one branch)

def gen(c:Ctx, image=None, audio=None, out='o.mp4', extra=(), frames=25, names=(), **kw)->Spec:
    a = ([] if image is None else ['--image', image]) + ['--audio', M(c, 'a1.wav') if audio is None else audio] + ['--out', str(c.dir/out)]
    a += [x for k,v in G.items() if k not in extra for x in (k, v)]
    return Spec(a + list(extra), names=names, ok_check=mp4_check(c.dir/out, frames, 64 if '--weights' in extra else None), **kw)  # the fixtures' weights are 64 px

add('generate', '--steps 1, default guidance, bundled portrait, 1 s wav (control)', 'ok', lambda c: gen(c, extra=['--guidance', '3.5']))

for nm,f,exp in [('missing file', 'nope.png', 'error'), ('empty file', 'empty.png', 'error'),
                 ('truncated PNG', 'truncated.png', 'error'), ('a WAV file', 'a1.wav', 'error'),
                 ('a directory', 'imgdir.png', 'error'), ('face-less uniform grey', 'grey.png', 'error'),
                 ('2000x400, face fills the height', 'wide2000x400.png', 'ok'), ('tiny 16x16', 'tiny16.png', 'error'),
                 ('grayscale PNG', 'gray_L.png', 'ok'), ('RGBA PNG', 'rgba.png', 'ok'), ('CMYK JPEG', 'cmyk.jpg', 'ok'),
                 ('16-bit PNG', 'gray16.png', 'ok'), ('EXIF-rotated JPEG', 'exif_rotated.jpg', 'ok')]:
    add('generate', f"--image {nm}", exp, lambda c, f=f: gen(c, image=M(c, f), names=(f,), keep=[M(c, f)] if Path(M(c, f)).exists() else []))

for nm,f,exp in [('missing file', 'nope.wav', 'error'), ('empty file', 'empty.wav', 'error'), ('corrupt WAV', 'corrupt.wav', 'error'),
                 ('zero-length WAV', 'zero.wav', 'error'), ('silent WAV', 'silent.wav', 'ok'),
                 ('MP4 without an audio stream', 'noaudio.mp4', 'error'), ('MP4 video with sound', 'speech.mp4', 'ok'),
                 ('MP3', 'a1.mp3', 'ok'), ('M4A (AAC)', 'a1.m4a', 'ok'), ('FLAC', 'a1.flac', 'ok'), ('stereo WAV', 'stereo.wav', 'ok'),
                 ('44.1 kHz WAV', 'a44k.wav', 'ok'), ('8 kHz WAV', 'a8k.wav', 'ok'), ('10 ms WAV', 'short10ms.wav', 'error')]:
    add('generate', f"--audio {nm}", exp, lambda c, f=f: gen(c, audio=M(c, f), names=(f,), keep=[M(c, f)] if Path(M(c, f)).exists() else []))

for opt,vals in [('steps', [('-1', 'error'), ('0', 'error')]),
                 ('speed', [('nan', 'error'), ('inf', 'error'), ('-1', 'error'), ('5', 'either'), ('100', 'error')]),
                 ('guidance', [('nan', 'error'), ('-1', 'error'), ('0', 'either')]), ('seed', [('-1', 'either')])]:
    for v,exp in vals:
        add('generate', f"--{opt} {v}", exp, lambda c, opt=opt, v=v: gen(c, extra=[f'--{opt}', v], names=(opt,)))

@case('generate', '--out an existing directory')
def _(c):
    d = c.dir/'outdir'; d.mkdir(); (d/'keep.txt').write_text('user file')
    return gen(c, out='outdir', names=('outdir',), keep=[d])

@case('generate', '--out in a missing folder', 'either')
def _(c): return gen(c, out='no/such/folder/o.mp4', names=('no/such/folder', 'folder'))

@case('generate', '--out without .mp4 suffix', 'either')
def _(c):
    s = gen(c, out='video', names=('video', 'suffix', '.mp4'))
    a,b = mp4_check(c.dir/'video', 25),mp4_check(c.dir/'video.mp4', 25)
    s.ok_check = lambda rec: None if (a() is None or b() is None) else a()
    return s

@case('generate', '--out an existing file, run succeeds: replaced', 'ok')
def _(c):
    (c.dir/'o.mp4').write_bytes(b'previous video'); return gen(c)

@case('generate', '--out an existing file, run fails (grey image): kept')
def _(c):
    (c.dir/'o.mp4').write_bytes(b'previous video'); return gen(c, image=M(c, 'grey.png'), names=('grey.png',), keep=[c.dir/'o.mp4'])

@case('generate', '--out an existing file, SIGKILL mid-run: kept, no temp', 'killed')
def _(c):
    shutil.copy(M(c, 'noaudio.mp4'), c.dir/'o.mp4')
    s = gen(c, audio=M(c, 'speech6s.wav'), extra=['--steps', '2'], keep=[c.dir/'o.mp4'])
    s.kill_when = lambda h: '%|' in read(h.err_path); s.kill_delay = 1.0
    return s

@case('generate', '--out after a SIGKILLed run: the next run removes its temp file', 'ok')
def _(c):
    dead = subprocess.Popen(['true']); dead.wait()                      # a pid that no longer runs
    stale = c.dir/f'.o.mp4.{dead.pid}.tmp.mp4'; stale.write_bytes(b'half a video')
    return gen(c, no_paths=[stale])

@case('generate', '--out inside a path that is a file')
def _(c):
    (c.dir/'afile').write_text('user file'); return gen(c, out='afile/o.mp4', names=('afile',), keep=[c.dir/'afile'])

@case('generate', '--out in a read-only folder')
def _(c): c.mount('ro', ro=True); return gen(c, out='ro/o.mp4', names=('ro/o.mp4', 'ro'))

@case('generate', '--out on a full disk (ENOSPC)')
def _(c):
    c.mount('full', '128k', leave=8192)
    return gen(c, out='full/o.mp4', names=('full/o.mp4', 'space'), no_paths=[c.dir/'full'/'o.mp4'])

@case('generate', '--out the same file as --audio')
def _(c):
    shutil.copy(M(c, 'speech.mp4'), c.dir/'speech.mp4')
    return gen(c, audio=str(c.dir/'speech.mp4'), out='speech.mp4', names=('speech.mp4',), keep=[c.dir/'speech.mp4'])

for nm,w in [('missing absolute path', None), ('./nope (relative, mistyped)', './nope'), ('nope/model (relative, looks like a hub id)', 'nope/model')]:
    add('generate', f"--weights {nm}", 'error',
        lambda c, w=w: gen(c, extra=['--weights', w or str(c.dir/'missing_model')], names=((w or 'missing_model').lstrip('./'),), cwd=c.dir))

for nm,w,exp in [('an empty folder', 'empty', 'error'), ('corrupt model_index.json', 'bad_index', 'error'),
                 ('truncated safetensors', 'truncated', 'error'), ('valid save_pretrained folder (control)', 'good', 'ok')]:
    add('generate', f"--weights {nm}", exp, lambda c, w=w: gen(c, extra=['--weights', str(c.fx('weights')/w)],
                                                               names=(w,), keep=[c.fx('weights')/w]))

@case('generate', '--weights a stage-1 emo-train run (control)', 'ok')
def _(c): return gen(c, extra=['--weights', str(c.fx('run_s1')[1])], keep=[c.fx('run_s1')[1]])

@case('generate', '--weights a run whose train_state.json names hub ids')
def _(c):
    run = c.dir/'run'; shutil.copytree(c.fx('run_s1')[1], run); hub_ids(run)
    return gen(c, extra=['--weights', str(run)], names=('evil', 'train_state', 'run'))

add('generate', '--device bogus', 'error', lambda c: gen(c, extra=['--device', 'bogus'], names=('bogus', 'device')))

@case('generate', '--device cuda on a machine without CUDA')
def _(c):
    import torch
    s = gen(c, extra=['--device', 'cuda'], names=('cuda', 'device'))
    if torch.cuda.is_available(): s.skip = 'this machine has CUDA'
    return s

# ----- emo-preprocess

P = ['--size', '64', '--workers', '1']

def manifest(ds)->list:
    p = Path(ds)/'manifest.jsonl'
    return [json.loads(l) for l in p.read_text().splitlines() if l.strip()] if p.exists() else []

def ds_check(ds, done:int, failed:int=0):
    def check(rec=None):
        try: rows = manifest(ds)
        except Exception as e: return f"manifest.jsonl unreadable ({e})"
        st = [r.get('status') for r in rows]
        if (st.count('done'), st.count('failed')) != (done, failed): return f"manifest: {st.count('done')} done, {st.count('failed')} failed; expected {done}, {failed}"
        for r in rows:
            if r.get('status') == 'done' and not (Path(ds)/'videos'/r['id']/'meta.json').exists(): return f"{r['id']}: done but no meta.json"
        return None
    return check

def pre(c:Ctx, vids, out='ds', extra=P, names=(), exp_done=None, **kw)->Spec:
    out = c.dir/out if isinstance(out, str) else out
    s = Spec([str(vids), str(out), *extra], names=names, **kw)
    if exp_done is not None: s.ok_check = ds_check(out, exp_done)
    if vids and Path(vids).exists(): s.keep.append(Path(vids))
    return s

@case('preprocess', '2 synthetic videos, --size 64 --workers 1 (control; the training data)', 'ok')
def _(c): return Spec([], driver=lambda sw, c, s: sw.fixtures.record('ds_train'))

@case('preprocess', 're-run with another --size on the same output')
def _(c):
    ds = c.dir/'ds'; shutil.copytree(c.fx('ds_train')[1], ds)
    return pre(c, c.fx('vids_good'), 'ds', ['--size', '128', '--workers', '1'], names=('size', '64', '128'), keep=[ds])

@case('preprocess', 'in_dir missing')
def _(c): return pre(c, c.dir/'novids', names=('novids',), untouched=[c.dir/'ds'])

@case('preprocess', 'in_dir is a file')
def _(c):
    f = c.dir/'clip.mp4'; shutil.copy(c.fx('vids_good')/'head_000.mp4', f)
    return pre(c, f, names=('clip.mp4',), untouched=[c.dir/'ds'], keep=[f])

@case('preprocess', 'in_dir is an empty folder')
def _(c): (c.dir/'vids').mkdir(); return pre(c, c.dir/'vids', names=('vids',), untouched=[c.dir/'ds'])

@case('preprocess', 'out_dir inside in_dir: the dataset is not taken for input', 'ok')
def _(c):
    v = c.dir/'vids'; shutil.copytree(c.fx('vids_good'), v)
    s = pre(c, v, v/'ds', names=('vids', 'ds'), exp_done=2); s.keep = sorted(v.glob('*.mp4')); return s

for v in ['0', '-8', '7', '100', '63']:
    add('preprocess', f"--size {v}", 'error',
        lambda c, v=v: pre(c, c.fx('vids_good'), extra=['--size', v, '--workers', '1'], names=('size',), untouched=[c.dir/'ds']))
for v in ['0', '-1']:
    add('preprocess', f"--workers {v}", 'error',
        lambda c, v=v: pre(c, c.fx('vids_good'), extra=['--size', '64', '--workers', v], names=('workers',), untouched=[c.dir/'ds']))
for v in ['3/2', '1/0', 'abc', '-1/2']:
    add('preprocess', f"--shard {v}", 'error',
        lambda c, v=v: pre(c, c.fx('vids_good'), extra=[*P, f'--shard={v}'], names=('shard',), untouched=[c.dir/'ds']))

@case('preprocess', 'good videos mixed with corrupt/empty/face-less/1-frame/silent ones', 'ok')
def _(c):
    s = pre(c, c.fx('vids_mixed'))
    ds = c.dir/'ds'
    def check(rec):
        rows = {r['id']: r for r in manifest(ds)}
        bad = [f"{i}: {rows.get(i, {}).get('status')}" for i in ('head_000', 'head_001') if rows.get(i, {}).get('status') != 'done']
        bad += [f"{i}: {rows.get(i, {}).get('status')}" for i in ('corrupt', 'empty', 'faceless', 'oneframe') if rows.get(i, {}).get('status') != 'failed']
        if rows.get('noaudio', {}).get('status') not in ('done', 'failed'): bad.append(f"noaudio: {rows.get('noaudio', {}).get('status')}")
        if bad: return 'manifest: ' + ', '.join(bad)
        if unlisted := [i for i in ('corrupt', 'empty', 'faceless', 'oneframe') if i not in rec.stdout]: return f"output does not list {unlisted} as failed"
        return None
    s.ok_check = check
    return s

def drive_concurrent(sw, c, s):
    "Run A; once it is busy start B on the same output; B is the case's record, A must finish intact."
    vids,ds = c.fx('vids_many'),c.dir/'ds'
    args = [str(vids), str(ds), *P]
    a = sw.spawn('preprocess', args, c.dir, tag='A')
    end = time.time() + 60
    while time.time() < end and a.wait(0.1) is None and not ('preprocess:' in read(a.err_path) or (ds/'videos').is_dir()): pass
    started_after = a.wait(0) is not None
    rec = sw.execute('preprocess', args, c.dir, 90, tag='B')
    rc_a = a.wait(150)
    if rc_a is None: kill_session(a.pid); a.wait(10)
    if left := lingering(a.pid, 5.0): rec.leftover.append('first run left processes: ' + '; '.join(proc_desc(p) for p in left[:3])); kill_session(a.pid)
    rec.notes.append(f"first run: exit {rc_a}")
    if started_after: rec.notes.append('the first run ended before the second started: not concurrent')
    chk = ds_check(ds, 6)()
    if rc_a != 0 or chk: rec.leftover.append(f"the first run was damaged: exit {rc_a}, {chk or 'manifest ok'}")
    return rec

@case('preprocess', 'two concurrent runs on one output: the second refuses')
def _(c): return Spec([], names=('ds', 'lock', 'running', 'another'), driver=drive_concurrent)

@case('preprocess', 'SIGKILL of the main process mid-run (--workers 2): no worker left', 'killed')
def _(c): return Spec([], driver=lambda sw, c, s: sw.fixtures.record('killed_preprocess'))

@case('preprocess', 're-run after the SIGKILL completes', 'ok')
def _(c):
    ds = c.fx('killed_preprocess')[1]
    s = pre(c, c.fx('vids_many'), ds, ['--size', '64', '--workers', '2'], exp_done=6)
    s.after = lambda rec: (lambda t: f"temp left in {ds.name}: {sorted(t)[:3]}" if t else None)(temp_files(ds))
    return s

@case('preprocess', '--latents without --vae')
def _(c): return pre(c, c.fx('vids_good'), extra=[*P, '--latents'], names=('vae', 'latents'), untouched=[c.dir/'ds'])

@case('preprocess', '--latents --vae missing path')
def _(c): return pre(c, c.fx('vids_good'), extra=[*P, '--latents', '--vae', str(c.dir/'novae')], names=('novae',), untouched=[c.dir/'ds'])

@case('preprocess', '--latents --vae someone/evil-vae (hub id, offline)')
def _(c): return pre(c, c.fx('vids_good'), extra=[*P, '--latents', '--vae', 'someone/evil-vae'], names=('evil-vae',), untouched=[c.dir/'ds'])

@case('preprocess', '--audio-features --wav2vec missing path')
def _(c): return pre(c, c.fx('vids_good'), extra=[*P, '--audio-features', '--wav2vec', str(c.dir/'now2v')], names=('now2v',), untouched=[c.dir/'ds'])

@case('preprocess', 'out_dir in a read-only folder')
def _(c): c.mount('ro', ro=True); return pre(c, c.fx('vids_good'), 'ro/ds', names=('ro/ds', 'ro'))

def evil_dataset(c:Ctx)->Path:
    "A copy of ds_train whose manifest also lists id '../../x'; c.dir/x is a user folder (with a video's files in it)."
    ds = c.dir/'ds'; shutil.copytree(c.fx('ds_train')[1], ds)
    rows = manifest(ds); evil = {**rows[0], 'id': '../../x', 'source': '../../x.mp4'}
    with open(ds/'manifest.jsonl', 'a') as f: f.write(json.dumps(evil) + '\n')
    shutil.copytree(ds/'videos'/rows[0]['id'], c.dir/'x'); (c.dir/'x'/'keep.txt').write_text('user file')
    return ds

@case('preprocess', "output manifest lists id '../../x': nothing outside touched", 'either')
def _(c):
    ds = evil_dataset(c)
    s = pre(c, c.fx('vids_good'), ds, names=('../../x', 'manifest'), keep=[c.dir/'x'])
    s.ok_check = lambda rec: "manifest still lists '../../x'" if any(r['id'] == '../../x' for r in manifest(ds)) else None
    return s

# ----- emo-train

def hub_ids(run:Path):
    "Make every train_state.json of `run` name hub ids for the VAE and wav2vec."
    for p in run.glob('checkpoint-*/train_state.json'):
        st = json.loads(p.read_text()); st['config'].update(vae='someone/evil-vae', wav2vec='someone/evil-wav2vec'); p.write_text(json.dumps(st))

def trn(c:Ctx, stage='1', data=None, out='run', extra=('--max-steps', '1'), names=(), ok_ckpt=True, **kw)->Spec:
    data = str(c.fx('ds_train')[1]) if data is None else str(data)
    out = c.dir/out if isinstance(out, str) else out
    s = Spec(['--stage', stage, '--data', data, '--out', str(out), *extra], names=names, **kw)
    if ok_ckpt: s.ok_check = lambda rec: None if list(Path(out).glob('checkpoint-*/train_state.json')) else f"no checkpoint in {Path(out).name}"
    if Path(data).exists(): s.keep.append(Path(data))
    return s

def cfg(c:Ctx, text:str, name='cfg.yaml')->str: p = c.dir/name; p.write_text(text); return str(p)

@case('train', 'stage 1, 1 step (control; used by later cases)', 'ok')
def _(c): return Spec([], driver=lambda sw, c, s: sw.fixtures.record('run_s1'))

@case('train', 'stage 1 with ema_decay 0.9, 2 steps, checkpoint every step (control)', 'ok')
def _(c): return Spec([], driver=lambda sw, c, s: sw.fixtures.record('run_ema'))

@case('train', 'stage 2 --from the stage-1 run (control)', 'ok')
def _(c): return trn(c, '2', extra=['--from', str(c.fx('run_s1')[1]), '--max-steps', '1'], keep=[c.fx('run_s1')[1]])

@case('train', '--data missing')
def _(c): return trn(c, data=c.dir/'nodata', names=('nodata',), untouched=[c.dir/'run'])

@case('train', '--data a folder without manifest.jsonl')
def _(c): (c.dir/'data').mkdir(); return trn(c, data=c.dir/'data', names=('data', 'manifest'), untouched=[c.dir/'run'])

@case('train', '--data with a corrupt manifest.jsonl')
def _(c):
    ds = c.dir/'ds'; shutil.copytree(c.fx('ds_train')[1], ds)
    with open(ds/'manifest.jsonl', 'a') as f: f.write('{"id": "head_9", "status": "do\n')
    return trn(c, data=ds, names=('manifest',), untouched=[c.dir/'run'])

@case('train', "--data whose manifest lists id '../../x'")
def _(c): ds = evil_dataset(c); return trn(c, data=ds, names=('../../x', 'manifest'), keep=[c.dir/'x'], untouched=[c.dir/'run'])

for v in ['0', '4']:
    add('train', f"--stage {v}", 'error', lambda c, v=v: trn(c, v, names=('stage',), untouched=[c.dir/'run']))
for v in ['0', '-1']:
    add('train', f"--max-steps {v}", 'error', lambda c, v=v: trn(c, extra=['--max-steps', v], names=('max-steps', 'max_steps'), untouched=[c.dir/'run']))

@case('train', '--config missing file')
def _(c): return trn(c, extra=['--config', str(c.dir/'nocfg.yaml'), '--max-steps', '1'], names=('nocfg.yaml',), untouched=[c.dir/'run'])

for nm,text,names in [('invalid YAML', 'lr: [1e-5\nbatch_size: 2\n', ('cfg.yaml',)), ('unknown key', 'learning_rate: 1e-4\n', ('learning_rate',)),
                      ('lr: -1', 'lr: -1\n', ('lr',)), ('batch_size: 0', 'batch_size: 0\n', ('batch_size',)),
                      ('resolution: 63', 'resolution: 63\n', ('resolution',)), ('lr: fast (wrong type)', 'lr: fast\n', ('lr',)),
                      ('a YAML list, not a mapping', '- lr\n- 1e-5\n', ('cfg.yaml',))]:
    add('train', f"--config {nm}", 'error', lambda c, text=text, names=names:
        trn(c, extra=['--config', cfg(c, text), '--max-steps', '1'], names=names, untouched=[c.dir/'run']))

@case('train', '--from missing path (stage 2)')
def _(c): return trn(c, '2', extra=['--from', str(c.dir/'nostage1'), '--max-steps', '1'], names=('nostage1',), untouched=[c.dir/'run'])

@case('train', '--from a stage-1 run for --stage 3')
def _(c): return trn(c, '3', extra=['--from', str(c.fx('run_s1')[1]), '--max-steps', '1'], names=('stage', 'run_s1'), untouched=[c.dir/'run'], keep=[c.fx('run_s1')[1]])

@case('train', '--resume with nothing to resume')
def _(c): return trn(c, extra=['--resume', '--max-steps', '1'], names=('run', 'resume'))

@case('train', '--out holds a run, no --resume')
def _(c):
    run = c.dir/'run'; shutil.copytree(c.fx('run_s1')[1], run)
    return trn(c, extra=['--max-steps', '1'], names=('run',), keep=[run])

@case('train', '--resume with a corrupt train_state.json')
def _(c):
    run = c.dir/'run'; shutil.copytree(c.fx('run_s1')[1], run)
    for p in run.glob('checkpoint-*/train_state.json'): p.write_text('{"step": 1, "stage": 1, "conf')
    return trn(c, extra=['--resume', '--max-steps', '2'], names=('train_state.json',), keep=[run])

@case('train', '--resume a stage-1 run as --stage 2')
def _(c):
    run = c.dir/'run'; shutil.copytree(c.fx('run_s1')[1], run)
    return trn(c, '2', extra=['--resume', '--max-steps', '2'], names=('stage',), keep=[run])

class Planted:
    "Unpickling this creates the file `marker`."
    def __init__(self, marker): self.marker = str(marker)
    def __reduce__(self): return (open, (self.marker, 'w'))

@case('train', '--resume with pickles planted in state/ (*.pkl, *.bin)')
def _(c):
    import torch
    run,marker = c.dir/'run',c.dir/'EXECUTED'
    shutil.copytree(c.fx('run_ema')[1], run)
    planted = 0
    for p in run.glob('checkpoint-*/state/*'):
        if p.suffix == '.pkl': p.write_bytes(pickle.dumps(Planted(marker))); planted += 1
        elif p.suffix == '.bin': torch.save({'state': Planted(marker)}, p); planted += 1
    if not planted: raise FixtureError(f"{run}: no *.pkl / *.bin under checkpoint-*/state")
    return trn(c, extra=['--config', str(c.fx('ema_config')), '--resume', '--max-steps', '3'], names=('state', 'pickle', 'checkpoint'), marker=marker)

@case('train', '--resume when train_state.json names hub ids (offline, no network)')
def _(c):
    run = c.dir/'run'; shutil.copytree(c.fx('run_s1')[1], run); hub_ids(run)
    return trn(c, extra=['--resume', '--max-steps', '2'], names=('evil', 'train_state', 'hub', 'offline'))

@case('train', '--out in a read-only folder')
def _(c): c.mount('ro', ro=True); return trn(c, out='ro/run', names=('ro/run', 'ro'))

@case('train', '--out on a full disk (checkpoint ENOSPC)')
def _(c):
    c.mount('full', '4m')
    s = trn(c, out='full/run', names=('full/run', 'space', 'checkpoint'))
    s.after = lambda rec: (lambda bad: f"half-written checkpoint left: {bad}" if bad else None)(
        [p.name for p in (c.dir/'full'/'run').glob('*checkpoint-*')])
    return s

# ----- emo-eval

def report_check(out, warns=()):
    "fn(record) -> problem|None: `out` is an emo-eval report with overall PSNR and SSIM, and warnings naming each of `warns`."
    def check(rec):
        try: r = json.loads(Path(out).read_text())
        except (OSError, ValueError) as e: return f"no readable report at {Path(out).name} ({type(e).__name__})"
        o = r.get('overall', {})
        if not all(isinstance(o.get(m), (int, float)) for m in ('psnr', 'ssim')): return f"report: no overall psnr and ssim ({o})"
        if miss := [w for w in warns if not any(w in x for x in r.get('warnings', []))]: return f"report: no warning names {miss}"
        return None
    return check

def ev(c:Ctx, real=None, fake=None, out='report.json', metrics='psnr,ssim', size='64', extra=(), names=(), **kw)->Spec:
    "emo-eval of `real` against `fake` (default: the eval fixture's real/ and fake/); a refusal leaves no report and no cache."
    E = c.fx('eval_vids')
    real,fake = Path(E/'real' if real is None else real),Path(E/'fake' if fake is None else fake)
    out = c.dir/out if isinstance(out, str) else Path(out)
    a = ['--real', real, '--fake', fake, '--out', out] + (['--metrics', metrics] if metrics else []) + (['--size', size] if size else [])
    s = Spec([str(x) for x in [*a, *extra]], names=names, ok_check=report_check(out), **kw)
    s.keep += [p for p in (real, fake) if p.exists()]
    s.untouched += [out, out.with_suffix('.cache')]
    return s

def eval_weights(c:Ctx, **kinds)->tuple: # (--weights-dir, marker)
    "A --weights-dir holding, per WEIGHTS key, a planted pickle ('zip': torch.save, 'raw': pickle.dumps), a 'tensor' or an 'empty' file."
    import torch
    from emo_repro.eval import WEIGHTS
    d,marker = c.dir/'weights',c.dir/'EXECUTED'; d.mkdir()
    for k,kind in kinds.items():
        p = d/WEIGHTS[k][0]
        if kind == 'zip': torch.save({'conv.weight': Planted(marker)}, p)
        elif kind == 'raw': p.write_bytes(pickle.dumps({'conv.weight': Planted(marker)}))
        elif kind == 'tensor': torch.save(torch.zeros(3), p)
        else: p.write_bytes(b'')
    return d,marker

def wfile(k:str)->str:
    from emo_repro.eval import WEIGHTS
    return WEIGHTS[k][0]

def track_entry(cache:Path, video:Path, size:int)->Path:
    "The file emo-eval's cache keeps the face track of `video` in at --size `size` (FeatureCache's naming: what, then a hash of the key)."
    from dataclasses import asdict
    from emo_repro.eval import EvalProtocol, _stat
    key = dict(video=_stat(video), protocol=asdict(EvalProtocol(size=size)))
    return cache/f"track-{hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:20]}.npz"

def recomputed(entry:Path, out:Path):
    "fn(record) -> problem|None: the planted cache `entry` was read, said so in one line, and written anew; the report is there."
    report = report_check(out)
    def check(rec):
        said = [l for l in (rec.stdout + rec.stderr).splitlines() if entry.name in l]
        if len(said) != 1 or 'again' not in said[0]: return f"{len(said)} lines name the planted {entry.name} (expected one saying it is computed again)"
        try:
            with np.load(entry, allow_pickle=False) as z: z['landmarks']
        except Exception as e: return f"{entry.name}: not written anew ({type(e).__name__})"
        return report(rec)
    return check

def planted_cache(c:Ctx, plant)->Spec:
    "emo-eval on copies of the eval videos whose real head_000's cached track is `plant(path, marker)`; it must be computed again."
    E,marker = c.fx('eval_vids'),c.dir/'EXECUTED'
    for sub in ('real', 'fake'): shutil.copytree(E/sub, c.dir/sub)
    entry = track_entry(c.dir/'report.cache', c.dir/'real'/'head_000.mp4', 64); entry.parent.mkdir()
    plant(entry, marker)
    s = ev(c, c.dir/'real', c.dir/'fake', marker=marker); s.ok_check = recomputed(entry, c.dir/'report.json')
    return s

@case('eval', '--metrics psnr,ssim --size 64, two real and two generated videos (control)', 'ok')
def _(c): return ev(c)

@case('eval', '--out an earlier report: replaced', 'ok')
def _(c): (c.dir/'report.json').write_text(json.dumps(dict(protocol={}, metrics=[], overall={}))); return ev(c)

@case('eval', '--out one of the input videos')
def _(c): return ev(c, out=c.fx('eval_vids')/'real'/'head_000.mp4', names=('--out', 'head_000.mp4'))

@case('eval', '--out the --split file (a .json input)')
def _(c):
    sp = c.dir/'split.json'; sp.write_text(json.dumps(dict(test=dict(p0=['head_000', 'head_001']))))
    return ev(c, out='split.json', extra=['--split', str(sp)], names=('--out', 'split.json'), keep=[sp])

@case('eval', '--out an existing directory')
def _(c):
    d = c.dir/'report.json'; d.mkdir(); (d/'keep.txt').write_text('user file')
    return ev(c, names=('--out', 'report.json'), keep=[d])

@case('eval', "--out an existing .json that is not a report (the user's)")
def _(c): (c.dir/'notes.json').write_text('{"mine": 1}'); return ev(c, out='notes.json', names=('notes.json',), keep=[c.dir/'notes.json'])

@case('eval', '--out in a read-only folder')
def _(c): c.mount('ro', ro=True); return ev(c, out='ro/report.json', names=('ro/report.json', 'ro'))

@case('eval', '--cache an existing file')
def _(c): f = c.dir/'features'; f.write_text('user file'); return ev(c, extra=['--cache', str(f)], names=('--cache', 'features'), keep=[f])

@case('eval', 'real and generated file names do not match')
def _(c):
    g = c.dir/'gen_other'; g.mkdir()
    for i,p in enumerate(sorted((c.fx('eval_vids')/'fake').glob('*.mp4'))): shutil.copy(p, g/f'other_{i:03d}.mp4')
    return ev(c, fake=g, names=('gen_other',))

@case('eval', '--real an empty folder')
def _(c): (c.dir/'real_empty').mkdir(); return ev(c, real=c.dir/'real_empty', names=('real_empty',))

@case('eval', 'two single files with different names: compared with each other', 'ok')
def _(c): E = c.fx('eval_vids'); return ev(c, E/'real'/'head_000.mp4', E/'fake'/'head_001.mp4')

@case('eval', 'a real video without a generated one: a warning, the rest measured', 'ok')
def _(c):
    g = c.dir/'fake1'; g.mkdir(); shutil.copy(c.fx('eval_vids')/'fake'/'head_000.mp4', g)
    s = ev(c, fake=g); s.ok_check = report_check(c.dir/'report.json', warns=('head_001',)); return s

@case('eval', '--metrics sync with a generated video without sound')
def _(c):
    d,_ = eval_weights(c, sync='empty')
    return ev(c, fake=c.fx('eval_vids')/'silent', metrics='sync', extra=['--weights-dir', str(d)], names=('no sound',))

add('eval', '--size 100000', 'error', lambda c: ev(c, size='100000', names=('size',)))
add('eval', '--crop-scale inf', 'error', lambda c: ev(c, extra=['--crop-scale', 'inf'], names=('crop-scale',)))
add('eval', '--metrics bogus', 'error', lambda c: ev(c, metrics='bogus', names=('bogus',)))
add('eval', '--metrics fid without --weights-dir', 'error', lambda c: ev(c, metrics='fid', names=('--weights-dir',)))

@case('eval', '--generate --steps 1 --guidance 1, one real video, into a new folder (control)', 'ok')
def _(c):
    s = ev(c, c.fx('eval_vids')/'real'/'head_000.mp4', c.dir/'gen', extra=['--generate', '--steps', '1', '--guidance', '1'], timeout=240)
    report,vid = s.ok_check,mp4_check(c.dir/'gen'/'head_000.mp4', 25)
    s.ok_check = lambda rec: vid() or report(rec)
    return s

@case('eval', '--generate --steps 0')
def _(c): return ev(c, fake=c.dir/'gen', extra=['--generate', '--steps', '0'], names=('steps',), untouched=[c.dir/'gen'])

@case('eval', '--cache holds a truncated track-*.npz: computed again, said in one line', 'ok')
def _(c):
    def plant(p, marker):
        import io
        b = io.BytesIO(); np.savez(b, landmarks=np.zeros((25, 468, 3), np.float32), boxes=np.zeros((25, 4), np.float32))
        p.write_bytes(b.getvalue()[:len(b.getvalue()) // 2])
    return planted_cache(c, plant)

@case('eval', '--cache holds an object-array track-*.npz (a pickle inside): computed again, not run', 'ok')
def _(c):
    def plant(p, marker):
        obj = np.empty(1, object); obj[0] = Planted(marker)
        np.savez(p, landmarks=obj, boxes=obj, detected=obj, image_size=obj)
    return planted_cache(c, plant)

for nm,kinds,metrics,key in [('the FID weights a pickle (torch.save)', dict(fid='zip'), 'fid', 'fid'),
                             ('the ArcFace weights a pickle (plain pickle)', dict(csim='raw'), 'csim', 'csim'),
                             ('the AlexNet weights of LPIPS a pickle (torch.save)', dict(alexnet='zip', lpips='zip'), 'lpips', 'alexnet'),
                             ('the SyncNet weights a pickle (plain pickle)', dict(sync='raw'), 'sync', 'sync'),
                             ('the ArcFace weights a tensor, not a state dict', dict(csim='tensor'), 'csim', 'csim')]:
    def make(c, kinds=kinds, metrics=metrics, key=key):
        d,marker = eval_weights(c, **kinds)
        return ev(c, metrics=metrics, extra=['--weights-dir', str(d)], names=(wfile(key),), marker=marker, keep=[d])
    add('eval', f"--weights-dir: {nm}", 'error', make)

# ----- emo-world

def wld(c:Ctx, out='w', budget='toy', procs='1', extra=(), names=(), **kw)->Spec:
    out = c.dir/out if isinstance(out, str) else Path(out)
    return Spec([str(x) for x in ['--out', out, '--budget', budget, '--procs', procs, *extra]], names=names, **kw)

def world_run(c:Ctx, files:dict|None=None, budget='toy', done=None)->Path:
    "A run folder c.dir/w as emo-world leaves it (world.json, done.json with `done` or every step, stages/), plus `files` {path: text}."
    from emo_repro.world import STEPS
    w = c.dir/'w'; (w/'stages').mkdir(parents=True)
    (w/'world.json').write_text(json.dumps(dict(budget=budget)))
    (w/'done.json').write_text(json.dumps({k: dict(seconds=1.0, at='2026-01-01 00:00:00') for k in (STEPS if done is None else done)}))
    for rel,text in (files or {}).items(): (w/rel).parent.mkdir(parents=True, exist_ok=True); (w/rel).write_text(text)
    return w

@case('world', '--budget toy --until videos into a new folder (control: no training)', 'ok')
def _(c):
    w = c.dir/'w'
    def check(rec):
        v = sorted((w/'videos').glob('world_*.mp4'))
        done = json.loads((w/'done.json').read_text()) if (w/'done.json').exists() else {}
        return None if len(v) == 4 and list(done) == ['videos'] else f"videos: {len(v)} of 4; done.json: {list(done)}"
    return wld(c, extra=['--until', 'videos'], ok_check=check, timeout=180)

@case('world', 'a finished run re-run: nothing to do, nothing changed', 'ok')
def _(c): w = world_run(c); return wld(c, keep=[w])

@case('world', '--out an existing file')
def _(c): f = c.dir/'notes.txt'; f.write_text('user file'); return wld(c, out='notes.txt', names=('notes.txt',), keep=[f])

@case('world', '--out in a read-only folder')
def _(c): c.mount('ro', ro=True); return wld(c, out='ro/w', names=('ro/w', 'ro'))

@case('world', "--out a folder with the user's own files")
def _(c):
    d = c.dir/'mine'; d.mkdir(); (d/'thesis.tex').write_text('user file'); (d/'data').mkdir(); (d/'data'/'x.csv').write_text('1,2\n')
    return wld(c, out='mine', names=('mine',), keep=[d])

for nm,files,names in [('a garbage done.json', {'done.json': '{"videos": {"seco'}, ('done.json',)),
                       ('a done.json that is a list', {'done.json': '["videos", "preprocess"]'}, ('done.json',)),
                       ('a garbage world.json', {'world.json': '{"budg'}, ('world.json',)),
                       ('a garbage stages/stage2/train_state.json', {'stages/stage2/train_state.json': '{"step": 3, "conf'}, ('train_state.json',)),
                       ("a stages/stage2/train_state.json without 'config'", {'stages/stage2/train_state.json': '{"step": 3}'}, ('train_state.json',))]:
    add('world', f"run folder with {nm}", 'error', lambda c, files=files, names=names: wld(c, names=names, keep=[world_run(c, files)]))

@case('world', 'a toy run folder re-run with --budget full')
def _(c): w = world_run(c); return wld(c, budget='full', names=('--budget',), keep=[w])

@case('world', 'a run folder in use (its lock held)')
def _(c):
    import fcntl
    w = world_run(c); f = open(w/'.lock', 'a+'); fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return wld(c, names=('in use',), keep=[w], after=lambda rec: f.close())

for nm,kw,names in [('--procs -1', dict(procs='-1'), ('--procs',)), ('--procs 0', dict(procs='0'), ('--procs',)),
                    ('--until nope', dict(extra=['--until', 'nope']), ('--until',)), ('--budget huge', dict(budget='huge'), ('--budget',))]:
    add('world', f"{nm}: refused before the folder is made", 'error', lambda c, kw=kw, names=names: wld(c, names=names, no_paths=[c.dir/'w'], **kw))

# ----- emo-demo

def free_port()->int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def serves(port:int):
    "fn(handle) -> bool: http://127.0.0.1:port/ answers 200, asked directly (not through the proxy)."
    def f(h):
        try:
            with socket.create_connection(('127.0.0.1', port), timeout=1) as s:
                s.sendall(b'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n'); return b' 200 ' in s.recv(64).split(b'\r\n')[0] + b' '
        except OSError: return False
    return f

LOCAL = dict(NO_PROXY='127.0.0.1,localhost', no_proxy='127.0.0.1,localhost')  # the usual setting beside a proxy

@case('demo', 'serves its page on a free port (NO_PROXY set), then SIGKILL: nothing left (control)', 'killed')
def _(c): port = free_port(); return Spec(['--port', str(port)], env=LOCAL, kill_when=serves(port), kill_delay=3.0, timeout=150)

@case('demo', 'serves its page with HTTP(S)_PROXY set and no NO_PROXY, then SIGKILL', 'killed')
def _(c): port = free_port(); return Spec(['--port', str(port)], kill_when=serves(port), kill_delay=3.0, timeout=150)

for nm,args,names in [('--port 99999', ['--port', '99999'], ('--port',)), ('--port -1', ['--port=-1'], ('--port',)),
                      ('--host 999.1.1.1', ['--host', '999.1.1.1'], ('--host', '999.1.1.1')), ('--max-seconds 0', ['--max-seconds', '0'], ('--max-seconds',))]:
    add('demo', nm, 'error', lambda c, args=args, names=names: Spec(args, names=names, env=LOCAL))

@case('demo', '--port already in use')
def _(c):
    s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1); port = s.getsockname()[1]
    return Spec(['--port', str(port)], names=('--port',), env=LOCAL, after=lambda rec: s.close())

@case('demo', '--weights a missing folder')
def _(c): return Spec(['--weights', str(c.dir/'no_model'), '--port', str(free_port())], names=('no_model',), env=LOCAL)

# ---------------------------------------------------------------------------------------------------------------------
# The sweep

def read(p)->str:
    try: return Path(p).read_text(errors='replace')
    except OSError: return ''

TRACEBACK = 'Traceback (most recent call last)'
TMP_CACHES = ('torchinductor_',)  # caches torch makes in $TMPDIR at import: not the commands' leftovers
ANSI = re.compile(r'\x1b\[[0-9;?]*[A-Za-z]')

def last_line(text:str)->str:
    for line in reversed(ANSI.sub('', text).splitlines()):
        segs = [s.strip() for s in line.split('\r') if s.strip()]
        if segs: return segs[-1]
    return ''

@dataclass
class Record:
    cmd:str; args:list; rc:int|None = None; timed_out:bool = False; killed:bool = False; seconds:float = 0.
    stdout:str = ''; stderr:str = ''; pid:int = 0
    leftover:list = field(default_factory=list); notes:list = field(default_factory=list)
    @property
    def last_line(self)->str:
        return last_line(self.stderr) or last_line(self.stdout) if self.rc else last_line(self.stdout) or last_line(self.stderr)

RANK = ['EXECUTED', 'NETWORK', 'HANG', 'LEFTOVER', 'CRASH', 'TRACEBACK', 'SILENT', 'LATE', 'UNCLEAR', 'REFUSED', 'NOFIXTURE', 'SKIP', 'CLEAR', 'OK']

class Sweep:
    def __init__(self, args):
        self.args = args
        self.root = Path(tempfile.mkdtemp(prefix='emo_input_sweep.'))
        os.chmod(self.root, 0o755)
        for d in ('tmp', 'hf_home', 'logs', 'cases', 'zygote'): (self.root/d).mkdir()
        self.net,self.mounts,self.n_spawn = NetTrap(),[],0
        proxy = f"http://127.0.0.1:{self.net.port}"
        self.env = {k: v for k,v in os.environ.items() if k.lower() not in ('no_proxy', 'pythonstartup')}
        self.env.update(HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1', HF_DATASETS_OFFLINE='1', HF_HUB_DISABLE_TELEMETRY='1',
                        HF_HOME=str(self.root/'hf_home'), TMPDIR=str(self.root/'tmp'), PYTHONDONTWRITEBYTECODE='1',
                        **{k: proxy for k in ('HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'all_proxy')})
        self.fixtures = Fixtures(self)
        self.runner = None

    def start_runner(self):
        if self.args.fresh: self.runner = FreshRunner(self.env); return
        z = ZygoteRunner(self.env, self.root/'zygote', self.root/'logs'/'zygote.log')
        r = z.ready()
        if r.get('ready'): log(f"zygote ready (imports took {r['seconds']} s)"); self.runner = z
        else:
            log(f"zygote failed, running fresh processes instead: {r.get('error', '')[-500:]}"); z.close()
            self.runner = FreshRunner(self.env)

    def spawn(self, cmd, args, cwd, tag='', env=None):
        self.n_spawn += 1
        out,err = self.root/'logs'/f"{self.n_spawn:03d}{tag}.out",self.root/'logs'/f"{self.n_spawn:03d}{tag}.err"
        h = self.runner.spawn(cmd, [str(a) for a in args], cwd, out, err, env)
        h.out_path,h.err_path,h.t0 = out,err,time.time()
        return h

    def execute(self, cmd, args, cwd, timeout, kill_when=None, kill_delay=0., kill_grace=3.0, tag='', env=None)->Record:
        "Run one command to its end (or timeout, or the kill), then look for processes it left."
        timeout *= self.args.timeout_scale * (1.5 if self.args.fresh else 1)
        rec = Record(cmd, [str(a) for a in args])
        h = self.spawn(cmd, args, cwd, tag, env); rec.pid = h.pid
        end,armed = h.t0 + timeout,None
        while True:
            rc = h.wait(min(0.2, max(0., end - time.time())) if kill_when else max(0., end - time.time()))
            if rc is not None: break
            if time.time() >= end:
                rec.timed_out = True; kill_session(h.pid); rc = h.wait(15); break
            if kill_when and armed is None and kill_when(h): armed = time.time()
            if armed is not None and time.time() - armed >= kill_delay:
                with contextlib.suppress(OSError): os.kill(h.pid, signal.SIGKILL)
                rec.killed = True; rc = h.wait(15); break
        rec.rc,rec.seconds = rc,round(time.time() - h.t0, 1)
        if kill_when and not rec.killed: rec.notes.append('it ended before the kill: nothing was tested')
        if left := lingering(h.pid, kill_grace if rec.killed else 5.0):
            rec.leftover.append('processes left: ' + '; '.join(proc_desc(p) for p in left[:3])); kill_session(h.pid)
        rec.stdout,rec.stderr = read(h.out_path),read(h.err_path)
        return rec

    def run_case(self, case:Case, i:int)->dict:
        d = self.root/'cases'/f"{i:03d}"; d.mkdir()
        c = Ctx(self, d)
        row = dict(command=f"emo-{case.cmd}", case=case.name, expected=case.expect)
        try: spec = case.make(c)
        except Skip as e: return {**row, 'outcome': 'SKIP', 'last_line': str(e), 'passed': None, 'seconds': 0}
        except FixtureError as e: return {**row, 'outcome': 'NOFIXTURE', 'last_line': str(e), 'passed': False, 'seconds': 0}
        if spec.skip: return {**row, 'outcome': 'SKIP', 'last_line': spec.skip, 'passed': None, 'seconds': 0}
        t0 = time.time()
        keep = {str(p): digest(p) for p in spec.keep}
        untouched = {str(p): digest(p) for p in spec.untouched}
        temps0,tmpdir0 = temp_files(d),set(os.listdir(self.root/'tmp'))
        hits0 = len(self.net.hits)
        timeout = spec.timeout or dict(generate=90, preprocess=150, train=180, eval=120, world=120, demo=90)[case.cmd]
        try:
            if spec.driver: rec = spec.driver(self, c, spec)
            else:
                kw = dict(kill_when=spec.kill_when, kill_delay=spec.kill_delay) if spec.kill_when else {}
                rec = self.execute(case.cmd, spec.args, spec.cwd or d, timeout, env=spec.env, **kw)
        except FixtureError as e: return {**row, 'outcome': 'NOFIXTURE', 'last_line': str(e), 'passed': False, 'seconds': round(time.time()-t0, 1)}
        # what it left behind
        leftover = list(rec.leftover)
        if new := sorted(temp_files(d) - temps0): leftover.append(f"temp files: {', '.join(new[:3])}")
        if newtmp := sorted(n for n in set(os.listdir(self.root/'tmp')) - tmpdir0 if not n.startswith(TMP_CACHES)):
            (rec.notes if rec.killed else leftover).append(f"left in $TMPDIR: {', '.join(newtmp[:3])}")
        for p in [n for n in set(os.listdir(self.root/'tmp')) - tmpdir0 if not n.startswith(TMP_CACHES)]: shutil.rmtree(self.root/'tmp'/p, ignore_errors=True) if (self.root/'tmp'/p).is_dir() else (self.root/'tmp'/p).unlink(missing_ok=True)
        for p,h in keep.items():
            if digest(p) != h: leftover.append(f"changed: {Path(p).name}")
        for p in spec.no_paths:
            if Path(p).exists(): leftover.append(f"half-written: {Path(p).name}")
        if spec.after and (prob := spec.after(rec)): leftover.append(prob)
        notes = list(rec.notes)
        # the outcome
        text = rec.stdout + rec.stderr; line = rec.last_line
        if spec.marker is not None and Path(spec.marker).exists(): outcome = 'EXECUTED'; notes.append(f"planted pickle ran: {Path(spec.marker).name} created")
        elif len(self.net.hits) > hits0: outcome = 'NETWORK'; notes.append('connection attempts: ' + '; '.join(self.net.hits[hits0:hits0+2]))
        elif rec.timed_out: outcome = 'HANG'
        elif leftover: outcome = 'LEFTOVER'
        elif case.expect == 'killed':
            outcome = 'OK' if rec.killed else ('TRACEBACK' if TRACEBACK in text else 'SILENT' if rec.rc else (('SILENT' if spec.ok_check and spec.ok_check(rec) else 'OK')))
        elif rec.rc == 0:
            prob = spec.ok_check(rec) if spec.ok_check and case.expect != 'error' else None
            outcome = 'SILENT' if case.expect == 'error' or prob else 'OK'
            if prob: notes.append(prob)
        elif rec.rc is not None and rec.rc < 0: outcome = 'CRASH'; notes.append(f"signal {-rec.rc}")
        elif TRACEBACK in text: outcome = 'TRACEBACK'
        elif case.expect == 'ok': outcome = 'REFUSED'
        elif [p for p,h in untouched.items() if digest(p) != h]: outcome = 'LATE'; notes.append('wrote ' + ', '.join(Path(p).name for p,h in untouched.items() if digest(p) != h))
        elif spec.names and not any(n.lower() in line.lower() for n in spec.names): outcome = 'UNCLEAR'; notes.append(f"names none of {list(spec.names)}")
        else: outcome = 'CLEAR'
        want = dict(ok={'OK'}, error={'CLEAR'}, either={'OK', 'CLEAR'}, killed={'OK'})[case.expect]
        return {**row, 'outcome': outcome, 'passed': outcome in want, 'rc': rec.rc, 'seconds': round(time.time() - t0, 1),
                'last_line': line, 'notes': leftover + notes, 'args': rec.args}

    def close(self):
        if self.runner: self.runner.close()
        for m in reversed(self.mounts):
            if subprocess.run(['umount', str(m)], capture_output=True).returncode: subprocess.run(['umount', '-l', str(m)], capture_output=True)
        if not self.args.keep: shutil.rmtree(self.root, ignore_errors=True)
        else: log(f"kept {self.root}")

def log(*a): print(*a, file=sys.stderr, flush=True)

def md(s:str, n:int=100)->str:
    s = ' '.join(str(s).split()); s = s if len(s) <= n else s[:n-1] + '…'
    return s.replace('|', '\\|')

def table(rows:list)->str:
    out = ['| command | case | expected | outcome | last line |', '|---|---|---|---|---|']
    for r in rows:
        note = f"⟨{'; '.join(r['notes'])}⟩ " if r.get('notes') else ''
        out.append(f"| {r['command']} | {md(r['case'], 70)} | {r['expected']} | {r['outcome']}{'' if r['passed'] in (True, None) else ' ✗'} | {md(note + r['last_line'], 100 + min(len(note), 80))} |")
    return '\n'.join(out)

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--only', default=','.join(COMMANDS), help=f"comma-separated commands: {','.join(COMMANDS)}")
    ap.add_argument('--out', default=str(REPO/'benchmarks'/'results'/'input_sweep.json'), help='JSON results (written atomically)')
    ap.add_argument('-k', default=None, help="run only cases whose 'command: name' contains this (case-insensitive)")
    ap.add_argument('--fresh', action='store_true', help='one new interpreter per case instead of forks of a pre-imported zygote')
    ap.add_argument('--timeout-scale', type=float, default=1.0, help='multiply every per-case timeout')
    ap.add_argument('--keep', action='store_true', help='keep the temporary folder (fixtures, case folders, logs)')
    ap.add_argument('--list', action='store_true', help='list the cases and exit')
    args = ap.parse_args()
    only = [s.strip().removeprefix('emo-') for s in args.only.split(',') if s.strip()]
    if bad := [s for s in only if s not in COMMANDS]: ap.error(f"--only: unknown command(s) {bad}; choose from {','.join(COMMANDS)}")
    cases = [c for c in CASES if c.cmd in only and (args.k is None or args.k.lower() in c.key.lower())]
    if args.list:
        for c in cases: print(f"{c.key}  [{c.expect}]")
        return
    if not cases: ap.error('no case matches')
    sw = Sweep(args); rows = []; t0 = time.time()
    def stop(signum, frame): raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)
    try:
        log(f"{len(cases)} cases in {sw.root}")
        sw.start_runner()
        for i,c in enumerate(cases):
            r = sw.run_case(c, i); rows.append(r)
            log(f"[{i+1}/{len(cases)}] {r['outcome']:9} {r['seconds']:5.1f}s {c.key} :: {md(r['last_line'], 90)}")
    except KeyboardInterrupt: log('interrupted: writing what ran')
    finally: sw.close()
    secs = round(time.time() - t0, 1)
    counts = {k: sum(r['outcome'] == k for r in rows) for k in RANK if any(r['outcome'] == k for r in rows)}
    passed = sum(bool(r['passed']) for r in rows)
    print(table(rows)); print()
    print('**outcomes:** ' + ', '.join(f"{k} {v}" for k,v in counts.items()) + f"  —  **{passed}/{len(rows)} as required**, {secs} s ({sw.runner.mode if sw.runner else '-'} mode)")
    try: commit = subprocess.run(['git', '-C', str(REPO), 'rev-parse', 'HEAD'], capture_output=True, text=True).stdout.strip()
    except OSError: commit = ''
    res = dict(tool='tools/input_sweep.py', when=time.strftime('%Y-%m-%dT%H:%M:%S'), seconds=secs, mode=sw.runner.mode if sw.runner else None,
               commit=commit, only=only, k=args.k, counts=counts, passed=passed, total=len(rows), cases=rows)
    out = Path(args.out); out.parent.mkdir(parents=True, exist_ok=True)
    fd,tmp = tempfile.mkstemp(dir=out.parent, prefix=f'.{out.name}.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'w') as f: json.dump(res, f, indent=1, default=str)
        os.replace(tmp, out)
    except BaseException: Path(tmp).unlink(missing_ok=True); raise
    log(f"wrote {out}")

if __name__ == '__main__': main()
