"""Benchmark of EMO training (emo_repro.training): optimiser-step time and peak memory of the `tiny` preset on CPU,
and of the `sd15` preset on CUDA when a GPU is present (stage 1 at 512x512, stage 2 with n + f = 4 + 12 frames).

    python benchmarks/training.py            # writes benchmarks/results/training.json

Each case runs in its own process (fresh accelerate state, clean peak-memory counters) through `EMOTrainer.train_step`,
the code path `emo-train` runs, on random latents in the cached-latent format (no VAE, no wav2vec, no data loading).
The sd15 model has random weights of the real size. Numbers are printed and saved, never asserted.
"""
from __future__ import annotations
import argparse, json, os, platform, statistics, subprocess, sys, tempfile, time
from pathlib import Path
import torch

RESULTS = Path(__file__).parent/'results'/'training.json'
CASES = {  # name: (preset, stage, device, TrainConfig overrides)
    'tiny_cpu stage 1': ('tiny', 1, 'cpu', {}),
    'tiny_cpu stage 2': ('tiny', 2, 'cpu', {}),
    'sd15_cuda stage 1, 512x512, micro-batch 8': ('sd15', 1, 'cuda', {}),
    'sd15_cuda stage 2, 512x512, n + f = 16 frames, micro-batch 1': ('sd15', 2, 'cuda', {}),
    'sd15_cuda stage 2, 512x512, 16 frames, no gradient checkpointing': ('sd15', 2, 'cuda', dict(gradient_checkpointing=False)),
}

class RandomClips(torch.utils.data.Dataset):
    "Random items in emo_repro.data's cached-latent format, shaped for `cfg` and the model's audio config."
    def __init__(self, cfg, model_config, num:int):
        s,f,n = cfg.resolution // 8,cfg.num_frames,cfg.motion_frames
        self.num,self.shapes = num,dict(latents=(4, f, s, s), reference_latents=(4, s, s), face_mask=(1, s, s), speed=(f,),
            audio_features=(f, 2*model_config.audio_m + 1, model_config.audio_layers, model_config.audio_width))
        if n: self.shapes['motion_latents'] = (4, n, s, s)
    def __len__(self): return self.num
    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return {k: torch.randn(v, generator=g, device='cpu') for k,v in self.shapes.items()}  # CPU items, whatever the default device

def peak_rss_reset():
    try: Path('/proc/self/clear_refs').write_text('5')
    except OSError: pass

def peak_rss()->int|None:
    try: return int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) * 1024
    except OSError: return None

def sync(device):
    if device.type == 'cuda': torch.cuda.synchronize()

def run_case(name:str, steps:int)->dict:
    "Time `steps` optimiser steps of one case after one warm-up step; peak memory over the timed steps."
    from emo_repro.backbone import EMOUNet
    from emo_repro.layers import perturb_zero_init
    from emo_repro.runs import TrainConfig
    from emo_repro.training import EMOTrainer
    preset,stage,device,kw = CASES[name]
    if device == 'cpu': os.environ['ACCELERATE_USE_CPU'] = 'true'
    cfg = TrainConfig.preset(preset, stage, log_with=None, preview_every=0, checkpoint_every=10**9, num_workers=0, **kw)
    torch.manual_seed(0)
    with torch.device(device): unet = EMOUNet.from_preset(preset)    # initialised where it trains
    perturb_zero_init(unet)
    trainer = EMOTrainer(cfg, unet, RandomClips(cfg, unet.config, cfg.micro_batch_size), tempfile.mkdtemp())
    dev,accum = trainer.accelerator.device,trainer.accelerator.gradient_accumulation_steps
    batch,micro = next(iter(trainer.loader)),0
    def opt_step():
        nonlocal micro
        for _ in range(accum): trainer.train_step(batch, micro); micro += 1
    try:
        opt_step(); sync(dev)                                            # warm-up: allocates optimiser state
        if dev.type == 'cuda': torch.cuda.reset_peak_memory_stats()
        else: peak_rss_reset()
        times = []
        for _ in range(steps):
            t0 = time.perf_counter(); opt_step(); sync(dev); times.append(time.perf_counter() - t0)
    except torch.OutOfMemoryError as e: return dict(error=f'out of memory: {str(e).splitlines()[0]}')
    step = statistics.median(times)
    peak = torch.cuda.max_memory_allocated() if dev.type == 'cuda' else peak_rss()
    trained = sum(p.numel() for p in unet.parameters() if p.requires_grad)
    return dict(device=torch.cuda.get_device_name() if dev.type == 'cuda' else f'cpu, {torch.get_num_threads()} threads',
                precision=cfg.mixed_precision, gradient_checkpointing=cfg.gradient_checkpointing, batch_size=cfg.batch_size,
                micro_batch_size=cfg.micro_batch_size, accumulation_steps=accum, frames=cfg.motion_frames + cfg.num_frames,
                resolution=cfg.resolution, trained_parameters_M=round(trained/1e6, 1), optimizer_step_s=round(step, 4),
                micro_batch_s=round(step/accum, 4), clips_per_s=round(cfg.batch_size/step, 3),
                peak_memory_MB=None if peak is None else round(peak/2**20, 1),
                memory_measure='cuda max_memory_allocated (weights, AdamW state, activations)' if dev.type == 'cuda'
                               else 'peak RSS of the process during the timed steps')

def main(steps:int=3, out:Path=RESULTS, threads:int|None=None):
    res = dict(torch=torch.__version__, machine=platform.machine(), load_average_1min=round(os.getloadavg()[0], 2), cases={})
    env = {**os.environ, 'MALLOC_MMAP_THRESHOLD_': '65536', **({'OMP_NUM_THREADS': str(threads)} if threads else {})}
    for name,(_,_,device,_) in CASES.items():
        if device == 'cuda' and not torch.cuda.is_available(): res['cases'][name] = 'skipped: no CUDA device'; continue
        r = subprocess.run([sys.executable, __file__, '--case', name, '--steps', str(steps)], capture_output=True, text=True, env=env)
        res['cases'][name] = json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else dict(error=r.stderr.strip()[-2000:])
        print(name, json.dumps(res['cases'][name]), flush=True)
    from emo_repro.core import atomic_write
    with atomic_write(out, 'w') as fh: json.dump(res, fh, indent=1)
    print(f'wrote {out}')

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--steps', type=int, default=3, help='timed optimiser steps per case (after one warm-up step)')
    p.add_argument('--out', type=Path, default=RESULTS)
    p.add_argument('--threads', type=int, default=None, help='CPU threads (default: torch default); 1 is steadier on a shared machine')
    p.add_argument('--case', choices=list(CASES), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.case: print(json.dumps(run_case(a.case, a.steps)))
    else: main(a.steps, a.out, a.threads)
