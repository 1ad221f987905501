"""Reference attention, the paper's `cross` against Animate Anyone's `concat`: stage 1 trained both ways on one budget.

    python benchmarks/reference_attention.py --world world        # an emo-world run folder (its data/ and stages/)
    python benchmarks/reference_attention.py --world world --steps 1000

Both runs are chapter 11's stage 1 (the synthetic preset, the world's dataset, VAE and wav2vec2, the same seed, data
order and noise) and differ only in `reference_attention`. Each is then scored as chapter 12 scores identity, on the
held-out people and sound: colour error of skin, hair and background, PSNR and SSIM against the world's own video, the
share of frames where the face mesh finds a face; and by its training loss over the last fifth of the run. A run
folder that holds checkpoints is continued, so a killed benchmark resumes. Writes
benchmarks/results/reference_attention.json. At 1000 steps each way: 5.5-6.6 min to train and
1.8 min to score, about 16 minutes in all on 2 CPU cores (about 22 at the default 1500). Numbers are
printed, never asserted.
"""
from __future__ import annotations
import argparse, json, platform, subprocess, sys, time
from pathlib import Path
import numpy as np
import torch
from emo_repro.core import InputError, atomic_write
from emo_repro.runs import latest_checkpoint, read_train_state
from emo_repro.world import World, launcher
from emo_repro.inference import EMOPipeline
from emo_repro.scorecard import held_out_person, lip_report, lip_sync, summary

ROOT = Path(__file__).parents[1]
WAYS = ('cross', 'concat')

def train(w:World, way:str, steps:int)->Path:
    "Stage 1 with `way` reference attention in the run folder's runs/reference_<way>; returns its newest checkpoint."
    out = w.runs/f'reference_{way}'
    cfg = dict(preset='synthetic', vae=str(w.stages/'vae'), wav2vec=str(w.stages/'wav2vec'), reference_attention=way,
               preview_every=0, log_with=None, checkpoint_every=max(1, steps // 5))
    w.configs.mkdir(exist_ok=True); f = w.configs/f'reference_{way}.json'; f.write_text(json.dumps(cfg, indent=1))
    done = latest_checkpoint(out)
    if done is None or read_train_state(done)['step'] < steps:
        cmd = [*launcher(w.procs), '--stage', 1, '--data', w.data, '--out', out, '--config', f, '--max-steps', steps,
               *(['--resume'] if done else [])]
        subprocess.run([str(c) for c in cmd], check=True)
    return latest_checkpoint(out)

def score(ckpt:Path, people:int, seconds:float)->dict:
    "Chapter 12's identity measures of the checkpoint's model, and its training loss."
    pipe = EMOPipeline.from_checkpoint(ckpt); pipe.set_progress_bar_config(disable=True)
    rows = lip_report(lip_sync(pipe, [held_out_person(i) for i in range(people)], seconds, other_audio=False))['people']
    hist = [h['loss'] for h in read_train_state(ckpt)['history']]
    return dict(colour_error=summary(rows, 'colour_error'), psnr=summary(rows, 'psnr'), ssim=summary(rows, 'ssim'),
                found=summary(rows, 'found'), vae_colour_error=summary(rows, 'vae_colour_error'),
                vae_psnr=summary(rows, 'vae_psnr'), people=[{k: r[k] for k in ('person', 'colour_error', 'psnr',
                'ssim', 'found')} for r in rows],
                loss_last_fifth=round(float(np.mean(hist[-max(1, len(hist) // 5):])), 5),
                params_m=round(sum(p.numel() for p in pipe.unet.parameters()) / 1e6, 3))

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--world', default='world', help="emo-world run folder with data/ and stages/vae, stages/wav2vec")
    ap.add_argument('--steps', type=int, default=1500)
    ap.add_argument('--people', type=int, default=4)
    ap.add_argument('--seconds', type=float, default=3.0)
    ap.add_argument('--procs', type=int, default=None)
    ap.add_argument('--out', default=str(ROOT/'benchmarks'/'results'/'reference_attention.json'))
    a = ap.parse_args()
    # checked before World adopts the folder, which would make it
    if not (Path(a.world)/'data'/'manifest.jsonl').exists():
        sys.exit(f"{Path(a.world)/'data'}: no dataset here; run `emo-world --out {a.world} --until cache` first")
    try: w = World(a.world, procs=a.procs)
    except InputError as e: sys.exit(str(e))
    res = dict(protocol=dict(steps=a.steps, people=a.people, seconds=a.seconds, stage=1, preset='synthetic'), ways={})
    for way in WAYS:
        t = time.time(); ckpt = train(w, way, a.steps); train_s = time.time() - t
        t = time.time(); res['ways'][way] = dict(score(ckpt, a.people, a.seconds), train_s=round(train_s, 1),
                                                  score_s=round(time.time() - t, 1))
    res['machine'] = dict(torch=torch.__version__, cpu_threads=torch.get_num_threads(), platform=platform.machine(),
                          procs=w.procs)
    with atomic_write(a.out, 'w') as f: json.dump(res, f, indent=1)
    print(f"{'way':7} {'colour':>7} {'psnr':>6} {'ssim':>6} {'found':>6} {'loss':>8} {'params M':>8}")
    for k,r in res['ways'].items():
        print(f"{k:7} {r['colour_error']:7.2f} {r['psnr']:6.2f} {r['ssim']:6.3f} {r['found']:6.2f} "
              f"{r['loss_last_fifth']:8.5f} {r['params_m']:8.3f}")

if __name__ == '__main__': main()
