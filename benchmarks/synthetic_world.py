"""The synthetic-world scorecard (chapter 12) of the model trained by `emo-world` (chapter 11).

    python benchmarks/synthetic_world.py                      # the shipped weights; the stage-3 ablation from world/stages
    python benchmarks/synthetic_world.py --weights world/pipeline --ablation world/stages/stage3_audio

Held-out people (seeds (1, i)) and held-out sound (the bundled clip's last 30 %, new syllables and silences); each
number beside its ablation and beside the world's own video measured the same way. Writes
benchmarks/results/synthetic_world.json after every part (a stopped run keeps what it measured; `--skip` parts already
there) and nbs/images/scorecard_frames.jpg. About 20 minutes on 2 CPU cores, run alone (a second torch process on the same cores slows both many times).
Numbers are printed and saved, never asserted.
"""
from __future__ import annotations
import argparse, json, platform, time
from pathlib import Path
import torch
from emo_repro.core import atomic_write
from emo_repro.inference import EMOPipeline, load_pipeline
from emo_repro.model_card import print_card
from emo_repro.scorecard import scorecard

ROOT = Path(__file__).parents[1]
RESULTS = ROOT/'benchmarks'/'results'/'synthetic_world.json'

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--weights', default='synthetic', help="pipeline to score: 'synthetic' (shipped) or a save_pretrained folder")
    ap.add_argument('--ablation', default=str(ROOT/'world'/'stages'/'stage3_audio'), help='stage-3 checkpoint trained with its audio layers')
    ap.add_argument('--out', default=str(RESULTS))
    ap.add_argument('--skip', default='', help='comma-separated parts already in the results file')
    ap.add_argument('--device', default=None)
    ap.add_argument('--drift-seconds', type=float, default=60.0, help='length of the drift video; 0: not measured')
    a = ap.parse_args()
    pipe = load_pipeline(a.weights, a.device); pipe.set_progress_bar_config(disable=True)
    abl = None
    if Path(a.ablation).is_dir():
        abl = EMOPipeline.from_checkpoint(a.ablation).to(pipe.device, pipe.unet.dtype); abl.set_progress_bar_config(disable=True)
    t = time.time()
    res = scorecard(pipe, a.out, abl, protocol=dict(drift_seconds=a.drift_seconds), skip=tuple(s for s in a.skip.split(',') if s), frames_out=ROOT/'nbs'/'images'/'scorecard_frames.jpg')
    res['machine'] = dict(torch=torch.__version__, device=str(pipe.device), cpu_threads=torch.get_num_threads(), platform=platform.machine(),
                          weights=a.weights, wall_s=round(time.time() - t, 1))
    with atomic_write(a.out, 'w') as f: json.dump(res, f, indent=1)
    print_card(res)

if __name__ == '__main__': main()
