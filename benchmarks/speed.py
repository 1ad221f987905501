"""Where a clip's time goes: EMO's clip as EMOPipeline makes it, per configuration, beside diffusers' bare `UNetMotionModel`
at the same shapes (the architecture's floor) and beside the same network computing everything the lean paths skip
(`bank.lean = False`, conditions encoded at every step: the implementation before those paths existed).

    python benchmarks/speed.py                 # CPU: the synthetic preset (16x16 latents), in a minute or two
    python benchmarks/speed.py --preset sd15   # a GPU: sd15 at 512x512 (64x64 latents), bf16 and fp16, eager and compiled
    bash benchmarks/gpu.sh                     # a GPU, one budgeted run of the rows that matter most (benchmarks/gpu.py)

Per configuration: seconds per 12-frame clip (ReferenceNet on the reference and the motion frames, the conditions, the
sampler's steps with guidance, b = 2, and the VAE decode of the 12 frames), its TFLOP (counted by torch.utils.flop_counter
on the same calls), achieved TFLOP/s, % of the device's dense peak for that precision, and peak memory. All configurations
run in one process, one after another, on random weights (speed does not depend on their values). Numbers are printed and
written to benchmarks/results/speed.json (or --out), never asserted.
"""
from __future__ import annotations
import argparse, json, os, platform, statistics, time
from pathlib import Path
import torch
from torch.utils.flop_counter import FlopCounterMode
from diffusers import AutoencoderKL, DDIMScheduler, MotionAdapter, UNet2DConditionModel, UNetMotionModel
from diffusers.utils import logging as dlogging
from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model
from emo_repro.core import atomic_write, drop_condition
from emo_repro.backbone import EMOUNet
from emo_repro.inference import EMOPipeline, decode_clip
from emo_repro.presets import PRESETS, SD15_VAE
from emo_repro.reference_attention import ReferenceFeatures
from emo_repro.layers import perturb_zero_init
from emo_repro.training import noise_scheduler

dlogging.set_verbosity_error()  # .to(dtype) on random models: nothing to keep in float32
RESULTS = Path(__file__).parent/'results'/'speed.json'
PEAK_TFLOPS = {'H100': 989, 'H200': 989, 'A100': 312, 'L4': 121, 'A10': 125, 'T4': 65} # dense bf16/fp16 tensor-core peaks, vendor sheets (SXM)

def device_peak(device:torch.device, dtype)->tuple: # (TFLOP/s or None, what it is)
    if device.type != 'cuda': return None,'no peak for a CPU'
    name = torch.cuda.get_device_name(device)
    hit = next((k for k in sorted(PEAK_TFLOPS, key=len, reverse=True) if k in name), None)
    if hit is None or dtype == torch.float32: return None,f'no table entry for {name} at {dtype}'
    return PEAK_TFLOPS[hit],f'{hit} dense {str(dtype)[6:]} tensor-core peak'

def sync(device):
    if device.type == 'cuda': torch.cuda.synchronize(device)

class Clip:
    "One 12-frame clip's inputs at a preset's shapes, as EMOPipeline's clip loop holds them; guidance doubles the batch (b = 2)."
    def __init__(self, unet:EMOUNet, device, dtype, f=12, n=4):
        cfg,s = unet.config,unet.config.unet['sample_size']
        g = dict(device=device, dtype=dtype)
        torch.manual_seed(0)
        self.b,self.f,self.n,self.s = 2,f,n,s
        self.drop = torch.tensor([False, True], device=device)                                   # (cond, uncond)
        self.reference = torch.randn(1, 4, s, s, **g); self.motion = torch.randn(1, n, 4, s, s, **g)
        self.windows = torch.randn(f, 2*cfg.audio_m + 1, cfg.audio_layers, cfg.audio_width, **g)  # (f, 2m+1, L, D)
        self.face_mask = torch.ones(1, s, s, **g); self.noise = torch.randn(1, 4, f, s, s, device=device)

def timesteps(pipe:EMOPipeline, sampler:str, steps:int):
    "`pipe`'s sampler with its timesteps on the CPU (the meta device, which counts the FLOPs, cannot give them back)."
    s = pipe.sampler(sampler); s.set_timesteps(steps); return s

def guided(step, noise:torch.Tensor, s, dtype, scale:float=3.5)->torch.Tensor:
    "`EMOPipeline.denoise_clip`'s loop for a network called as `step(latents (2, 4, f, h, w), t)`, without EMO's context."
    lat,on_dev = noise.float() * s.init_noise_sigma,s.timesteps.to(noise.device)
    for i,t in enumerate(s.timesteps.tolist()):
        pred = step(s.scale_model_input(lat, t).to(dtype).repeat(2, 1, 1, 1, 1), on_dev[i]).float()
        lat = s.step(pred[1:] + scale * (pred[:1] - pred[1:]), t, lat).prev_sample
    return lat

def emo_clip(pipe:EMOPipeline, x:Clip, steps:int, lean:bool=True, sampler:str='ddim'):
    "A clip as EMOPipeline makes one (lean), or with every condition encoded again at each step and the lean paths off."
    unet,s = pipe.unet,timesteps(pipe, sampler, steps)
    unet.bank.lean = lean
    ref = pipe.reference_features(x.reference, x.drop)  # the pipeline does this once per video; counted and timed with the clip (1.6 TFLOP at sd15)
    if lean: lat = pipe.denoise_clip(x.noise, pipe.clip_conditions(ref, x.motion, x.windows, 1.0, x.face_mask, x.drop), 3.5, scheduler=s)
    else:
        kw = dict(reference=ReferenceFeatures(ref.tokens, pipe.encode_motion_frames(x.motion, x.b)),
                  audio=drop_condition(x.windows.expand(x.b, *x.windows.shape), x.drop), face_mask=x.face_mask.expand(x.b, *x.face_mask.shape),
                  speed=torch.ones(x.b, x.f, device=x.noise.device, dtype=unet.dtype))                 # one speed per frame
        lat = guided(lambda z, t: unet(z, t, **kw).sample, x.noise, s, unet.dtype)
    return decode_clip(pipe.vae, lat[0])

def bare_clip(bare:UNetMotionModel, pipe:EMOPipeline, x:Clip, steps:int, sampler:str='ddim', text:int=77):
    "The same clip on diffusers' UNetMotionModel (AnimateDiff: no ReferenceNet, no EMO layers), 77 text tokens per frame as SD's."
    ehs = torch.randn(x.b * x.f, text, bare.config.cross_attention_dim, device=x.noise.device, dtype=bare.dtype)
    lat = guided(lambda z, t: bare(z, t, encoder_hidden_states=ehs).sample, x.noise, timesteps(pipe, sampler, steps), bare.dtype)
    return decode_clip(pipe.vae, lat[0])

def measure(run, device, repeats:int)->dict:
    "Median seconds of `run()` after one warm-up (which also compiles; its seconds too), and the peak memory."
    with torch.no_grad():
        sync(device); t0 = time.perf_counter(); run(); sync(device); first = time.perf_counter() - t0
        if device.type == 'cuda': torch.cuda.reset_peak_memory_stats(device)
        times = []
        for _ in range(repeats):
            sync(device); t0 = time.perf_counter(); run(); sync(device); times.append(time.perf_counter() - t0)
    out = dict(seconds_per_clip=round(statistics.median(times), 4), first_call_s=round(first, 2))
    if device.type == 'cuda': out['peak_memory_GB'] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    return out

def clip_row(run, device, repeats:int, tflop, peak:tuple)->dict:
    "`measure` of one kind of clip, with its counted TFLOP (or a function giving them, asked after the timing; None: not counted), the TFLOP/s achieved and their share of the device's peak."
    r = measure(run, device, repeats)
    tflop = tflop() if callable(tflop) else tflop
    if tflop is None: return r
    r.update(tflop_per_clip=round(tflop, 4), achieved_tflops=round(tflop / r['seconds_per_clip'], 5))
    if peak[0]: r['percent_of_peak'] = round(100 * r['achieved_tflops'] / peak[0], 1)
    return r

def count_flops(preset:str, dtype=torch.bfloat16)->dict:
    "TFLOP of each kind of clip, counted on the meta device (no memory, no time): per sampler step, and the once-per-clip rest."
    pipe,bare = models(preset, torch.device('meta'), dtype)
    x = Clip(pipe.unet, torch.device('meta'), dtype)
    def tflop(run):
        with torch.no_grad(), FlopCounterMode(display=False) as fc: run()
        return fc.get_total_flops() / 1e12
    out = {}
    for name,run in [('emo', lambda n: emo_clip(pipe, x, n, True)), ('emo_before', lambda n: emo_clip(pipe, x, n, False)),
                     ('bare_unet_motion_model', lambda n: bare_clip(bare, pipe, x, n))]:
        one,two = tflop(lambda: run(1)),tflop(lambda: run(2))
        out[name] = dict(per_step=round(two - one, 6), per_clip_rest=round(2 * one - two, 6))  # ReferenceNet on reference and motion frames, VAE decode
    out['emo_step_saving_percent'] = round(100 * (1 - out['emo']['per_step'] / out['emo_before']['per_step']), 1)
    return out

def clip_tflop(counts:dict, kind:str, steps:int)->float: return counts[kind]['per_clip_rest'] + steps * counts[kind]['per_step']

def models(preset:str, device, dtype)->tuple: # EMOPipeline, UNetMotionModel
    "EMO's pipeline (EMOUNet, VAE, wav2vec2) and diffusers' bare UNetMotionModel at `preset`'s shapes, random weights, built on `device`."
    p = PRESETS[preset]
    with torch.device(device):
        unet = EMOUNet.from_preset(preset); perturb_zero_init(unet)
        bare = UNetMotionModel.from_unet2d(UNet2DConditionModel(**p.unet), MotionAdapter(**p.motion), load_weights=False)
        vae,w2v = AutoencoderKL(**(p.vae or SD15_VAE)),Wav2Vec2Model(Wav2Vec2Config(**(p.wav2vec or {})))  # sd15 loads wav2vec2-base: its shape
    unet,bare,vae,w2v = (m.eval().to(dtype).requires_grad_(False) for m in (unet, bare, vae, w2v))
    pipe = EMOPipeline(vae, unet, w2v, Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True),
                       DDIMScheduler.from_config(noise_scheduler('v_prediction', zero_terminal_snr=True).config))
    pipe.set_progress_bar_config(disable=True)
    return pipe,bare

def compile_forward(model, backend:str='inductor'):
    "Compile `model`'s forward as `EMOPipeline.compile` does (one graph, static shapes); `del model.forward` undoes it."
    model.forward = torch.compile(model.forward, fullgraph=True, dynamic=False, backend=backend)

def study(preset:str, device, dtypes, compiled:tuple, steps:tuple, repeats:int, counts:dict)->dict:
    res = {}
    for dtype in dtypes:
        pipe,bare = models(preset, device, dtype)
        x,peak = Clip(pipe.unet, device, dtype),device_peak(device, dtype)
        for comp in (compiled if dtype == dtypes[0] else (False,)):  # compiled: the first precision only (minutes of compiling each)
            if comp: compile_forward(pipe.unet); compile_forward(bare)
            for n in steps:
                key = f"{str(dtype)[6:]} {'compiled' if comp else 'eager'} {n} steps"
                runs = dict(emo=lambda: emo_clip(pipe, x, n), bare_unet_motion_model=lambda: bare_clip(bare, pipe, x, n))
                if not comp: runs['emo_before'] = lambda: emo_clip(pipe, x, n, lean=False)
                row = {kind: clip_row(run, device, repeats, clip_tflop(counts, kind, n), peak) for kind,run in runs.items()}
                e = row['emo']['seconds_per_clip']
                row['emo_over_bare'] = round(e / row['bare_unet_motion_model']['seconds_per_clip'], 3)
                if 'emo_before' in row: row['before_over_emo'] = round(row['emo_before']['seconds_per_clip'] / e, 3)
                row['peak'] = peak[1]
                res[key] = row
                print(key, json.dumps(row), flush=True)
            if comp: del pipe.unet.forward, bare.forward
        del pipe, bare
        if device.type == 'cuda': torch.cuda.empty_cache()
    return res

def main(preset:str, out:Path, repeats:int, steps:tuple, compile_too:bool, count_only:bool=False):
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    dtypes = (torch.bfloat16, torch.float16) if device.type == 'cuda' else (torch.float32,)
    counts = count_flops(preset); print('counted TFLOP:', json.dumps(counts), flush=True)
    res = dict(torch=torch.__version__, machine=platform.machine(), device=torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu',
               cpu_threads=torch.get_num_threads(), load_average_1min=round(os.getloadavg()[0], 2), preset=preset,
               latents=PRESETS[preset].unet['sample_size'], b=2, f=12, n=4, guidance_scale=3.5, counted_tflop=counts,
               counted_tflop_per_clip={k: {n: round(clip_tflop(counts, k, n), 4) for n in steps} for k in ('emo', 'emo_before', 'bare_unet_motion_model')})
    if not count_only: res['configurations'] = study(preset, device, dtypes, (False, True) if compile_too else (False,), steps, repeats, counts)
    with atomic_write(out, 'w') as fh: json.dump(res, fh, indent=1)
    print(f'wrote {out}')

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--preset', default='synthetic', choices=sorted(PRESETS))
    p.add_argument('--steps', default='40,10', help='sampler steps per clip, comma-separated')
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--compile', action='store_true', help='also torch.compile the steps (minutes of compiling)')
    p.add_argument('--count-only', action='store_true', help='only count the TFLOP (meta device: any preset, any machine, seconds)')
    p.add_argument('--out', type=Path, default=RESULTS)
    a = p.parse_args()
    main(a.preset, a.out, a.repeats, tuple(int(s) for s in a.steps.split(',')), a.compile, a.count_only)
