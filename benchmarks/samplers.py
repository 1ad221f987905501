"""Fewer steps on the shipped synthetic-world model: DDIM-40 against 25/15/10/6 steps of DDIM, DPM-Solver++ and UniPC.

    python benchmarks/samplers.py                 # the shipped weights, held-out people 0-1, 2 s of held-out sound each

Each setting generates the same held-out people saying the same held-out sound with the same seeds (chapter 12's
`sampler_sweep`), at a requested head speed of 2 deg/frame, and is measured as the scorecard measures: lip-sync r,
colour error, frame-to-frame change, head-speed error. Prints the table and the fewest steps within 5 % of DDIM-40,
writes benchmarks/results/samplers.json. About 15 minutes on 2 CPU cores, run alone. Numbers are printed, never asserted.
"""
from __future__ import annotations
import argparse, json, platform, time
from pathlib import Path
import torch
from emo_repro.core import atomic_write
from emo_repro.inference import load_pipeline
from emo_repro.scorecard import fewest_steps, held_out_person, sampler_sweep

ROOT = Path(__file__).parents[1]

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--weights', default='synthetic', help="pipeline: 'synthetic' (shipped) or a save_pretrained folder")
    ap.add_argument('--people', type=int, default=2)
    ap.add_argument('--seconds', type=float, default=2.0)
    ap.add_argument('--out', default=str(ROOT/'benchmarks'/'results'/'samplers.json'))
    ap.add_argument('--device', default=None)
    a = ap.parse_args()
    pipe = load_pipeline(a.weights, a.device); pipe.set_progress_bar_config(disable=True)
    t = time.time()
    rows = sampler_sweep(pipe, [held_out_person(i) for i in range(a.people)], a.seconds)
    best = fewest_steps(rows)
    res = dict(rows=rows, fewest_within_5pct=best, protocol=dict(people=a.people, seconds=a.seconds, speed=2.0, guidance=3.5),
               machine=dict(torch=torch.__version__, device=str(pipe.device), cpu_threads=torch.get_num_threads(),
                            platform=platform.machine(), weights=a.weights, wall_s=round(time.time() - t, 1)))
    with atomic_write(a.out, 'w') as f: json.dump(res, f, indent=1)
    print(f"{'sampler':8} {'steps':>5} {'lip r':>7} {'colour':>7} {'change':>7} {'speed err':>9} {'s':>6}")
    for r in rows: print(f"{r['sampler']:8} {r['steps']:5d} {r['r']:7.3f} {r['colour_error']:7.2f} {r['change']:7.2f} {r['speed_error']:9.3f} {r['seconds']:6.1f}")
    print('fewest steps within 5 % of DDIM-40:', 'none' if best is None else f"{best['sampler']} {best['steps']}")

if __name__ == '__main__': main()
