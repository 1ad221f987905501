"""Benchmark of the EMO backbone (emo_repro.backbone): parameters per group at `sd15` size, forward time and
peak memory of the `tiny` preset on CPU, and of the `sd15` preset on CUDA when a GPU is present.

    python benchmarks/backbone.py            # writes benchmarks/results/backbone.json

Numbers are printed and saved, never asserted.
"""
from __future__ import annotations
import argparse, json, os, platform, statistics, sys, time
from pathlib import Path
import torch
from emo_repro.core import atomic_write
from emo_repro.backbone import EMOUNet
from emo_repro.loading import sd15_load_plan
from emo_repro.layers import perturb_zero_init

RESULTS = Path(__file__).parent/'results'/'backbone.json'

def sd15_parameters()->dict:
    "Parameter counts per group and the load plan of the sd15 preset, in both reference-attention modes (meta device)."
    out = {}
    for mode in ('cross', 'concat'):
        with torch.device('meta'): m = EMOUNet.from_preset('sd15', reference_attention=mode)
        counts, plan = m.param_counts(), sd15_load_plan(m)
        own = m.state_dict()
        out[mode] = dict(groups_M={g: round(c/1e6, 3) for g, c in counts.items()}, total_M=round(sum(counts.values())/1e6, 3),
                         new_parameters_M=round(sum(own[k].numel() for k in plan.added)/1e6, 3),
                         replaced_parameters_M=round(sum(own[k].numel() for k in plan.replaced)/1e6, 3),
                         keys=dict(loaded=len(plan.loaded), replaced=len(plan.replaced), added=len(plan.added), dropped=len(plan.dropped)))
    return out

def inputs(model:EMOUNet, b:int, f:int, n:int, device, dtype=torch.float32)->dict:
    "Random conditions of the right shapes for `model`: latents, audio windows, speed, face mask, motion-frame latents."
    cfg = model.config
    s = cfg.unet['sample_size']
    g = dict(device=device, dtype=dtype)
    return dict(sample=torch.randn(b, 4, f, s, s, **g), reference=torch.randn(b, 4, s, s, **g),
                motion=torch.randn(b, n, 4, s, s, **g) if n else None,
                audio=torch.randn(b, f, 2*cfg.audio_m + 1, cfg.audio_layers, cfg.audio_width, **g),
                speed=torch.full((b, f), 1.0, device=device), face_mask=torch.ones(b, 1, s, s, **g))

def sync(device):
    if device.type == 'cuda': torch.cuda.synchronize()

def peak_rss_reset()->int|None:
    "Reset the kernel's peak-RSS counter (Linux); return the current RSS in bytes."
    try:
        Path('/proc/self/clear_refs').write_text('5')
        return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1]) * 1024
    except OSError: return None

def peak_rss()->int|None:
    try: return int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) * 1024
    except OSError: return None

def time_forward(model:EMOUNet, x:dict, temporal:bool=True, repeats:int=5, autocast=None)->dict:
    "Median wall time of ReferenceNet (once per clip) and of one backbone call (one denoising step), and peak memory."
    device = x['sample'].device
    ctx = torch.autocast(device.type, dtype=autocast) if autocast else torch.autocast(device.type, enabled=False)
    with torch.no_grad(), ctx:
        feats = model.reference_net(x['reference'], x['motion'])
        model(x['sample'], 500, reference=feats, audio=x['audio'], speed=x['speed'], face_mask=x['face_mask'], temporal=temporal)  # warm-up
        if device.type == 'cuda': torch.cuda.reset_peak_memory_stats(); base = torch.cuda.memory_allocated()
        else: base = peak_rss_reset()
        ref_t, step_t = [], []
        for _ in range(repeats):
            sync(device); t0 = time.perf_counter()
            feats = model.reference_net(x['reference'], x['motion'])
            sync(device); t1 = time.perf_counter()
            model(x['sample'], 500, reference=feats, audio=x['audio'], speed=x['speed'], face_mask=x['face_mask'], temporal=temporal)
            sync(device); t2 = time.perf_counter()
            ref_t.append(t1 - t0); step_t.append(t2 - t1)
        if device.type == 'cuda': peak = torch.cuda.max_memory_allocated() - base; kind = 'cuda max_memory_allocated above the weights'
        else: peak = None if base is None else peak_rss() - base; kind = 'peak RSS above the RSS before the timed calls (glibc mmap threshold fixed at 64 KiB)'
    return dict(reference_net_s=round(statistics.median(ref_t), 5), backbone_step_s=round(statistics.median(step_t), 5),
                peak_memory_MB=None if peak is None else round(peak/2**20, 1), memory_measure=kind)

def main(repeats:int=5, out:Path=RESULTS, threads:int|None=None):
    if threads: torch.set_num_threads(threads)
    res = dict(torch=torch.__version__, machine=platform.machine(), cpu_threads=torch.get_num_threads(),
               load_average_1min=round(os.getloadavg()[0], 2), sd15_parameters=sd15_parameters())  # CPU timings are only comparable at low load
    torch.manual_seed(0)
    tiny = EMOUNet.from_preset('tiny').eval(); perturb_zero_init(tiny)
    cpu = torch.device('cpu')
    res['tiny_cpu'] = {'video b=1 f=12 n=4': time_forward(tiny, inputs(tiny, 1, 12, 4, cpu), True, repeats),
                       'image stage b=1 f=1': time_forward(tiny, inputs(tiny, 1, 1, 0, cpu), False, repeats)}
    if torch.cuda.is_available():
        gpu = torch.device('cuda')
        with gpu: sd15 = EMOUNet.from_preset('sd15').eval()    # initialised on the GPU
        res['sd15_cuda'] = dict(device=torch.cuda.get_device_name(), precision='fp32 weights, bf16 autocast')
        for mode, kw in [('video b=1 f=12 n=4 (one of 40 DDIM steps)', dict(b=1, f=12, n=4, temporal=True)),
                         ('image stage b=1 f=1', dict(b=1, f=1, n=0, temporal=False))]:
            t = kw.pop('temporal')
            res['sd15_cuda'][mode] = time_forward(sd15, inputs(sd15, device=gpu, **kw), t, repeats, torch.bfloat16)
    else: res['sd15_cuda'] = 'skipped: no CUDA device'
    print(json.dumps(res, indent=1))
    with atomic_write(out, 'w') as fh: json.dump(res, fh, indent=1)
    print(f'wrote {out}')

if __name__ == '__main__':
    if 'MALLOC_MMAP_THRESHOLD_' not in os.environ:   # glibc then returns freed large blocks to the OS, so peak RSS measures a call
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, 'MALLOC_MMAP_THRESHOLD_': '65536'})
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--repeats', type=int, default=5)
    p.add_argument('--out', type=Path, default=RESULTS)
    p.add_argument('--threads', type=int, default=None, help='CPU threads (default: torch default); 1 is steadier on a shared machine')
    a = p.parse_args()
    main(a.repeats, a.out, a.threads)
