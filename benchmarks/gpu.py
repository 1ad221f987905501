"""EMO's speed on one GPU in one prepared run of at most 8 minutes: the rows that matter most first, each written to
benchmarks/results/gpu.json as soon as it is measured (the file is replaced atomically after every row, so a run cut short
keeps every finished row).

    bash benchmarks/gpu.sh                                        # sd15 on the GPU
    python benchmarks/gpu.py --preset tiny --out /tmp/gpu.json    # the same plan at CPU size: a dry run

The tiny preset is the dry run: every row and the file they go to, at CPU size, with one timed clip per row, 4 s of speech
and one CPU thread (on a busy CPU, threads that wait for each other cost more than they bring).

Rows, in order (sd15: 512x512, b = 2 for guidance, f = 12, n = 4 motion frames, random weights, bf16):
  emo compiled ...        a clip as EMOPipeline makes it, the network torch.compile'd as `EMOPipeline.compile` does it, at
                          40 DDIM steps and at FEW_STEPS (chapter 10's few-step preset: UniPC, 10 steps)
  emo compiled, kernels   with --profile: one compiled step's GPU kernel time by family (attention, GEMM, convolution, norm, ...)
  bare compiled ...       diffusers' UNetMotionModel at the same shapes (AnimateDiff without EMO's layers), compiled the same
                          way: the architecture's floor; `emo_over_bare` is EMO's time over it
  pipeline ...            EMOPipeline end to end at FEW_STEPS, compiled: a WAV file of 60 s of speech and a portrait file to the
                          MP4; its total over (clips x one clip's denoising), goal <= 1.15, and each part's share
  eager ...               EMO, bare and EMO before the lean paths at 40 steps, bf16; EMO in fp16
A clip row: seconds per 12-frame clip (ReferenceNet on the reference and motion frames, the conditions, the steps with
guidance, the VAE decode), its TFLOP (counted by benchmarks/speed.py on the meta device, in a second process while this one
builds and compiles), TFLOP/s achieved, % of the device's dense peak, peak memory. A row that would not end inside the budget
is written as skipped, with the time it needed; a row that fails is written with its error, and the run goes on.

Without PyAV the pipeline row reads the WAV with the standard library and stops at the frames (no MP4); without MediaPipe it
is given the portrait's face box. The row says which.
"""
from __future__ import annotations
import time
START = time.monotonic()  # the budget counts the imports too
import argparse, importlib, itertools, json, math, platform, re, statistics, subprocess, sys, tempfile
from pathlib import Path
import numpy as np, torch
from emo_repro.core import asset, atomic_write
from emo_repro.inference import FEW_STEPS, EMOPipeline, clip_schedule, decode_clip, mp4_audio, to_host
from emo_repro.portraits import find_face, load_image
from emo_repro.data import encode_frames
from emo_repro.video import FPS, read_wav, write_video, write_wav
sys.path.insert(0, str(Path(__file__).parent))
from speed import Clip, bare_clip, clip_row, clip_tflop, compile_forward, device_peak, emo_clip, models, sync, timesteps

RESULTS = Path(__file__).parent/'results'/'gpu.json'
ASTRONAUT_BOX = (178., 69., 273., 177.) # find_face's box of the bundled astronaut.png (MediaPipe 0.10.14), for machines without MediaPipe

def have(module:str)->bool:
    try: importlib.import_module(module); return True
    except ImportError: return False

class Rows:
    "The results file: a header, then the rows in the order they finish, replaced atomically after each one."
    def __init__(self, path, budget_s:float, **header):
        self.path,self.end,self.res = Path(path),START + budget_s,dict(header, rows={})
        self.write()
    def left(self)->float: return self.end - time.monotonic()
    def write(self):
        with atomic_write(self.path, 'w') as fh: json.dump(self.res, fh, indent=1)

    def run(self, name:str, measure, needs_s:float=0., skip:str|None=None)->dict:
        "Row `name` from `measure()` if about `needs_s` seconds are left (and no reason to `skip` it), else skipped; an error is recorded, not raised."
        t0 = time.monotonic()
        if skip: row = dict(skipped=skip)
        elif needs_s > self.left(): row = dict(skipped=f'needs about {needs_s:.0f} s, {max(self.left(), 0):.0f} s of the budget left')
        else:
            try: row = measure()
            except Exception as e:
                row = dict(error=f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:400]}")
                if torch.cuda.is_available(): torch.cuda.empty_cache()
            row['row_s'] = round(time.monotonic() - t0, 1)
        self.res['rows'][name] = row; self.write()
        print(f'[{time.monotonic() - START:5.0f} s] {name}: {json.dumps(row)}', flush=True)
        return row

class Counts:
    "benchmarks/speed.py's TFLOP count of `preset`, made in a second process while this one builds and compiles."
    def __init__(self, preset:str, folder:Path):
        self.path = folder/'counted.json'
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).parent/'speed.py'), '--preset', preset, '--count-only', '--out', str(self.path)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.counts,self.error = None,None
    def tflop(self, kind:str, steps:int)->float|None: # None when the count failed (`error` says why): the rows keep their times
        if self.counts is None and self.error is None:
            _,err = self.proc.communicate()
            if self.proc.returncode: self.error = f"counting the TFLOP failed: {(err.strip().splitlines() or [''])[-1][:300]}"
            else: self.counts = json.loads(self.path.read_text())['counted_tflop']
        return None if self.error else clip_tflop(self.counts, kind, steps)

def compiled_graphs()->int: return torch._dynamo.utils.counters['stats']['unique_graphs']  # graphs dynamo has compiled so far

FAMILIES = (('attention', 'flash|fmha|attention|sdpa|softmax'), ('convolution', 'conv|fprop|dgrad|wgrad|implicit|winograd|cudnn'),
            ('GEMM', 'gemm|matmul|aten::mm|addmm|bmm|aten::linear|cutlass|cublas|nvjet|xmma|triton_tem'), ('norm', 'norm|welford'),
            ('reduction', 'triton_red|triton_per|reduce|aten::sum|aten::mean'),
            ('elementwise', 'triton_poi|elementwise|vectorized|unrolled|copy|fill|aten::')) # first match wins; then 'other'

def family(kernel:str)->str: return next((f for f,pat in FAMILIES if re.search(pat, kernel.lower())), 'other')

def kernel_families(step, device, top:int=8)->dict:
    "Share of one call's kernel time by family (on a CPU: the self time of each aten op), and the longest kernels."
    from torch.profiler import ProfilerActivity, profile
    gpu = device.type == 'cuda'
    with torch.no_grad(): step(); sync(device)                                                 # compiled already: this checks it
    with torch.no_grad(), profile(activities=[ProfilerActivity.CUDA if gpu else ProfilerActivity.CPU]) as prof: step(); sync(device)
    ev = [(e.key, e.self_device_time_total if gpu else e.self_cpu_time_total) for e in prof.key_averages()]
    ev = sorted([(k, t) for k,t in ev if t > 0 and (gpu or k.startswith('aten::'))], key=lambda kt: -kt[1])
    total,fam = sum(t for _,t in ev) or 1,{}
    for k,t in ev: fam[family(k)] = fam.get(family(k), 0) + t
    return dict(measured='GPU kernel time' if gpu else 'self CPU time of aten ops', total_ms=round(total / 1e3, 2),
                percent_by_family={f: round(100 * t / total, 1) for f,t in sorted(fam.items(), key=lambda ft: -ft[1])},
                longest_kernels_ms={k[:100]: round(t / 1e3, 3) for k,t in ev[:top]})

def one_step(pipe:EMOPipeline, x:Clip):
    "A function running one denoising call of a clip, as `denoise_clip` makes it."
    ctx = pipe.clip_conditions(pipe.reference_features(x.reference, x.drop), x.motion, x.windows, 1.0, x.face_mask, x.drop)
    z,t = x.noise.to(pipe.unet.dtype).repeat(2, 1, 1, 1, 1),timesteps(pipe, 'ddim', 40).timesteps.to(x.noise.device)[0]  # as the loop passes them
    return lambda: pipe.unet(z, t, context=ctx)

def timed(fn, device)->tuple: # seconds, result
    sync(device); t0 = time.perf_counter(); r = fn(); sync(device)
    return time.perf_counter() - t0,r

def pipeline_row(pipe:EMOPipeline, x:Clip, seconds:float, device, folder:Path)->dict:
    "EMOPipeline end to end at FEW_STEPS, a WAV and a portrait file to the MP4: its total, and each part timed alone after it."
    sampler,steps = FEW_STEPS
    has_av,has_mp = have('av'),have('mediapipe')
    wav,mp4,image_file = folder/'speech.wav',folder/'emo.mp4',asset('astronaut.png')
    speech = read_wav(asset('speech_en.wav'))                                                  # 6.4 s, 16 kHz mono
    write_wav(wav, np.tile(speech, math.ceil(seconds * 16000 / len(speech)))[:round(seconds * 16000)])
    box = None if has_mp else ASTRONAUT_BOX
    graphs = compiled_graphs()
    with torch.no_grad():
        total,out = timed(lambda: pipe(image_file, wav if has_av else read_wav(wav), mp4 if has_av else None, num_inference_steps=steps,
                                       sampler=sampler, face_box=box, return_frames=False), device)
    recompiled = compiled_graphs() - graphs
    T,f,n = out.num_frames,pipe.config.clip_length,pipe.config.motion_frames
    clips,dev,dt = len(clip_schedule(T, f, n)),x.noise.device,pipe.unet.dtype
    with torch.no_grad():                                                                       # the parts, each alone
        parts = dict(audio_read=timed(lambda: pipe.read_audio(wav) if has_av else read_wav(wav), device)[0])
        wave = read_wav(wav)
        parts['audio_encoding'] = timed(lambda: pipe.track_features(wave, T).features(0, T), device)[0]
        s,image = timed(lambda: load_image(image_file), device); parts['image_read'] = s
        if has_mp: parts['face_detection'] = timed(lambda: find_face(image), device)[0]
        found = box if box is not None else find_face(image)
        s,(ref,_) = timed(lambda: pipe.reference_crop(image, pipe.resolution, found), device); parts['crop'] = s
        s,lat = timed(lambda: encode_frames(pipe.vae, ref[None]).to(dev, dt), device); parts['vae_encode'] = s
        s,feats = timed(lambda: pipe.reference_features(lat, x.drop), device); parts['reference_net'] = s
        s,ctx = timed(lambda: pipe.clip_conditions(feats, x.motion, x.windows, 1.0, x.face_mask, x.drop), device)
        parts['motion_frames_and_conditions'] = clips * s
        def denoise():
            s = pipe.sampler(sampler); s.set_timesteps(steps, device=dev)
            return pipe.denoise_clip(x.noise, ctx, 3.5, scheduler=s)
        ts = [timed(denoise, device) for _ in range(3)]
        clip_s = statistics.median(t for t,_ in ts)
        parts['denoising'] = clips * clip_s
        s,frames = timed(lambda: to_host(decode_clip(pipe.vae, ts[0][1][0]))(), device); parts['vae_decode'] = clips * s
    if has_av: parts['mp4_writing'] = timed(lambda: write_video(folder/'parts.mp4', itertools.islice(itertools.cycle(frames), T), FPS,
                                                                *mp4_audio(wav, 16000)), device)[0]
    return dict(speech_seconds=round(seconds, 2), frames=T, clips=clips, sampler=sampler, steps=steps, total_s=round(total, 2),
                clip_denoising_s=round(clip_s, 4), total_over_clips_x_denoising=round(total / (clips * clip_s), 3), goal='<= 1.15',
                graphs_compiled_during_run=recompiled, seconds_by_part={k: round(v, 3) for k,v in parts.items()},
                percent_of_total_by_part={k: round(100 * v / total, 1) for k,v in parts.items()},
                not_in_parts_s=round(total - sum(parts.values()), 2),
                parts_note='each part timed alone after the run (per clip x clips); in the run the host parts overlap the GPU, so they can sum past the total',
                mp4='written' if has_av else 'not written: PyAV is absent here; the total stops at the frames (decoded and copied to the host)',
                audio='read from the WAV by PyAV' if has_av else 'read from the WAV by the standard library (PyAV is absent)',
                face_box='found by MediaPipe' if has_mp else f'given (MediaPipe is absent): {list(ASTRONAUT_BOX)}')

def main(preset:str, out:Path, budget:float, repeats:int|None, backend:str|None, profile:bool, seconds:float|None):
    device,dry = torch.device('cuda' if torch.cuda.is_available() else 'cpu'),preset == 'tiny'
    if not dry and device.type != 'cuda': sys.exit(f'gpu.py: the {preset} preset needs a CUDA device; --preset tiny dry-runs the plan on a CPU')
    repeats,seconds = repeats or (1 if dry else 2),seconds or (4 if dry else 60)
    if dry and device.type == 'cpu': torch.set_num_threads(1)
    dtype = torch.bfloat16 if device.type == 'cuda' else torch.float32
    backend = backend or ('inductor' if device.type == 'cuda' else 'eager')  # on a CPU the dry run traces (graph breaks, recompiles) without code generation
    sampler,few = FEW_STEPS
    folder = Path(tempfile.mkdtemp(prefix='emo_gpu_'))
    counts = Counts(preset, folder)
    pipe,bare = models(preset, device, dtype)
    x,peak = Clip(pipe.unet, device, dtype),device_peak(device, dtype)
    gb = lambda m: round(sum(p.numel() * p.element_size() for p in m.parameters()) / 2**30, 2)
    rows = Rows(out, budget, torch=torch.__version__, device=torch.cuda.get_device_name() if device.type == 'cuda' else f'cpu ({platform.machine()})',
                preset=preset, dtype=str(dtype)[6:], compile_backend=backend, repeats=repeats, cpu_threads=torch.get_num_threads(),
                b=2, f=12, n=4, guidance_scale=3.5, few_steps=list(FEW_STEPS), budget_seconds=budget, percent_of_peak_against=peak[1],
                weights_GB=dict(emo=gb(pipe.unet), bare_unet_motion_model=gb(bare), vae=gb(pipe.vae), wav2vec=gb(pipe.wav2vec)),
                peak_memory_note='all four models stay on the device throughout; a row\'s peak includes their weights',
                pyav=have('av'), mediapipe=have('mediapipe'))
    def clip(kind, run, steps, prec_peak=peak, ratio=None): # ratio(row) -> {name: value} to add to the row
        def measure():
            graphs = compiled_graphs()
            r = clip_row(run, device, repeats, lambda: counts.tflop(kind, steps), prec_peak)
            r['graphs_compiled'] = compiled_graphs() - graphs
            if counts.error: r['tflop'] = counts.error
            return dict(r, **(ratio(r) if ratio else {}))
        return measure
    def over(num:dict, den:dict, key:str)->dict: # the ratio of two rows' seconds, where both were measured
        return {key: round(num['seconds_per_clip'] / den['seconds_per_clip'], 3)} if 'seconds_per_clip' in num and 'seconds_per_clip' in den else {}

    pipe.compile(backend=backend)
    e40 = rows.run('emo compiled 40 ddim', clip('emo', lambda: emo_clip(pipe, x, 40), 40))
    ef = rows.run(f'emo compiled {few} {sampler}', clip('emo', lambda: emo_clip(pipe, x, few, sampler=sampler), few))
    if profile: rows.run('emo compiled, one step: kernel time by family', lambda: kernel_families(one_step(pipe, x), device))
    compile_forward(bare, backend)
    compile_s = e40.get('first_call_s', 0)
    b40 = rows.run('bare compiled 40 ddim', clip('bare_unet_motion_model', lambda: bare_clip(bare, pipe, x, 40), 40,
                                                 ratio=lambda r: over(e40, r, 'emo_over_bare')), needs_s=compile_s)
    rows.run(f'bare compiled {few} {sampler}', clip('bare_unet_motion_model', lambda: bare_clip(bare, pipe, x, few, sampler), few,
                                                  ratio=lambda r: over(ef, r, 'emo_over_bare')), needs_s=0 if 'first_call_s' in b40 else compile_s)
    del bare.forward

    c = ef.get('seconds_per_clip', e40.get('seconds_per_clip', 1.) * few / 40)                 # one few-step clip
    needs = lambda secs: 1.35 * math.ceil(secs * FPS / 12) * c + 15                          # the run, the parts, the MP4
    fit = next((s for s in (seconds, 45, 30, 20, 10, 5) if s <= seconds and needs(s) <= rows.left()), seconds)  # shorter speech rather than none
    rows.run(f'pipeline {fit:g} s of speech, {few} {sampler}, compiled', lambda: dict(pipeline_row(pipe, x, fit, device, folder), asked_seconds=seconds),
             needs_s=needs(fit))
    del pipe.unet.forward

    eager = 1.5 * e40.get('seconds_per_clip', 0) * (repeats + 1)                               # eager is slower than compiled
    e = rows.run('emo eager 40 ddim', clip('emo', lambda: emo_clip(pipe, x, 40), 40), needs_s=eager)
    rows.run('bare eager 40 ddim', clip('bare_unet_motion_model', lambda: bare_clip(bare, pipe, x, 40), 40,
                                        ratio=lambda r: over(e, r, 'emo_over_bare')), needs_s=eager)
    rows.run('emo before the lean paths, eager 40 ddim', clip('emo_before', lambda: emo_clip(pipe, x, 40, lean=False), 40,
                                                              ratio=lambda r: over(r, e, 'before_over_emo')), needs_s=eager)
    del bare
    def fp16():
        for m in (pipe.unet, pipe.vae): m.half()
        x16 = Clip(pipe.unet, device, torch.float16)
        return clip('emo', lambda: emo_clip(pipe, x16, 40), 40, device_peak(device, torch.float16))()
    rows.run('emo eager 40 ddim, float16', fp16, needs_s=eager, skip=None if device.type == 'cuda' else 'one precision on a CPU')
    print(f'wrote {out} in {time.monotonic() - START:.0f} s')

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--preset', default='sd15', choices=('tiny', 'synthetic', 'sd15'), help='tiny: the dry run, on any machine')
    p.add_argument('--out', type=Path, default=RESULTS)
    p.add_argument('--budget', type=float, default=460, help='seconds for the whole run, imports included; rows that would not fit are skipped')
    p.add_argument('--repeats', type=int, default=None, help='timed clips per row, after one warm-up clip (default 2; tiny 1)')
    p.add_argument('--backend', default=None, help="torch.compile backend (default: inductor on a GPU, eager on a CPU)")
    p.add_argument('--profile', action='store_true', help="add a row: one compiled step's kernel time by family (torch.profiler)")
    p.add_argument('--seconds', type=float, default=None, help='seconds of speech of the pipeline row (default 60; tiny 4)')
    a = p.parse_args()
    main(a.preset, a.out, a.budget, a.repeats, a.backend, a.profile, a.seconds)
