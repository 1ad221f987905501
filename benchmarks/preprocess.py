"""Throughput of `emo-preprocess` (emo_repro.data.preprocess_folder) on this machine.

Two inputs, each preprocessed from scratch with 2 workers:
- `synthetic`: talking heads of the synthetic world (emo_repro.synthetic), 4 s at 128 x 128, 25 fps,
  cropped to 64 x 64, as the later chapters use them;
- `portrait`: the bundled portrait rolled and shifted (emo_repro.tracking.synthetic_head_clip),
  10 s at 512 x 512 and 30 fps with speech, cropped to 512 x 512 as for HDTF.

    python benchmarks/preprocess.py            # writes benchmarks/results/preprocess.json

Numbers are printed and saved, never asserted.
"""
from __future__ import annotations
import argparse, json, os, platform, tempfile, time
from pathlib import Path
import numpy as np, torch
from PIL import Image
from emo_repro.core import asset, atomic_write
from emo_repro.audio import load_audio
from emo_repro.tracking import synthetic_head_clip
from emo_repro.data import preprocess_folder
from emo_repro.video import write_video
from emo_repro.synthetic import make_synthetic_talking_heads

RESULTS = Path(__file__).parent/'results'/'preprocess.json'

def portrait_videos(d:Path, n:int, seconds:float=10, fps:int=30)->None:
    "`n` clips of the bundled portrait moving by known amounts, with the bundled speech looped."
    img = np.asarray(Image.open(asset('astronaut.png')).convert('RGB'))
    speech = load_audio(asset('speech_en.wav'))
    for i in range(n):
        frames,_ = synthetic_head_clip(img, round(seconds*fps), roll_per_frame=0.2*(i+1), shift_per_frame=(0.3, -0.2))
        write_video(d/f'portrait_{i}.mp4', frames, fps=fps, audio=np.resize(speech, round(seconds*16000)))

def bench(name:str, make, size:int, workers:int, seconds:float)->dict:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp)/'in'; make(src)
        n = len(list(src.glob('*.mp4')))
        t = time.perf_counter()
        rows = preprocess_folder(src, Path(tmp)/'out', size=size, workers=workers, progress=False)
        dt = time.perf_counter() - t
    done = sum(r['status'] == 'done' for r in rows)
    r = dict(videos=n, done=done, seconds_per_video=seconds, crop_size=size, workers=workers, wall_s=round(dt, 2),
             videos_per_minute=round(60*n/dt, 2), video_seconds_per_second=round(n*seconds/dt, 3))
    print(f"{name}: {n} videos of {seconds:g} s in {dt:.1f} s with {workers} workers: {r['videos_per_minute']} videos/min, "
          f"{r['video_seconds_per_second']} s of video per second ({done} done)")
    return r

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--workers', type=int, default=2)
    ap.add_argument('--synthetic', type=int, default=16, help='number of synthetic videos')
    ap.add_argument('--portrait', type=int, default=4, help='number of portrait videos')
    a = ap.parse_args()
    res = dict(torch=torch.__version__, machine=platform.machine(), cpu_threads=os.cpu_count(),
               load_average_before=round(os.getloadavg()[0], 2))
    res['synthetic'] = bench('synthetic', lambda d: make_synthetic_talking_heads(d, a.synthetic, seconds=4, size=128), 64, a.workers, 4)
    res['portrait'] = bench('portrait', lambda d: portrait_videos(d, a.portrait), 512, a.workers, 10)
    with atomic_write(RESULTS, 'w') as f: json.dump(res, f, indent=1)
    print(f"wrote {RESULTS}")

if __name__ == '__main__': main()
