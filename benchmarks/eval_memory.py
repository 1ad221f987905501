"""Peak memory of `emo-eval` on one 10 s video at its default `--size 512`, one run per metric.

The real video is the bundled portrait moved by known amounts (emo_repro.tracking.synthetic_head_clip),
512 x 512 at 25 fps with the bundled speech looped; the generated one is the same video re-encoded at a
lower quality. The networks are the real architectures with random weights, saved under the file names
`--weights-dir` expects (numbers do not matter here, memory does). Each metric runs alone in a fresh
`emo-eval` process; its peak resident memory is the kernel's ru_maxrss of that process. The face tracking
runs once, in the `efid_landmarks` run (E-FID reads the tracks and nothing else, so that row is the tracking's
peak); every other run starts from a cache holding those tracks only, so its row is the networks and the
measuring. The goal is under 2 GB for every metric.

    python benchmarks/eval_memory.py          # writes benchmarks/results/eval_memory.json

Numbers are printed and saved, never asserted.
"""
from __future__ import annotations
import json, os, platform, shutil, subprocess, sys, tempfile, time
from pathlib import Path

RESULTS = Path(__file__).parent/'results'/'eval_memory.json'
SECONDS,FPS,GOAL_GB = 10,25,2.0

def videos(d:Path)->None:
    "real/clip.mp4 and fake/clip.mp4: 10 s of the moving portrait with sound, and its re-encoding."
    import numpy as np
    from PIL import Image
    from emo_repro.core import asset
    from emo_repro.audio import load_audio
    from emo_repro.tracking import synthetic_head_clip
    from emo_repro.video import read_video, video_audio, write_video
    img = np.asarray(Image.open(asset('astronaut.png')).convert('RGB').resize((512, 512)))
    frames,_ = synthetic_head_clip(img, SECONDS*FPS, roll_per_frame=0.2, shift_per_frame=(0.3, -0.2))
    wave = np.resize(load_audio(asset('speech_en.wav')), SECONDS*16000)
    write_video(d/'real'/'clip.mp4', frames, fps=FPS, audio=wave)
    write_video(d/'fake'/'clip.mp4', read_video(d/'real'/'clip.mp4'), fps=FPS, audio=video_audio(d/'real'/'clip.mp4', len(frames)), crf=30)

def weights(d:Path)->None:
    "Random weights of every network, under the names in WEIGHTS."
    import torch
    from emo_repro.eval import WEIGHTS, ARCFACE_DEPTHS, FIDInceptionV3, InceptionI3d, IResNet, SyncNet, AlexNetFeatures, LPIPSHeads
    nets = dict(fid=FIDInceptionV3(), fvd=InceptionI3d(), csim=IResNet(ARCFACE_DEPTHS[100]), sync=SyncNet(), lpips=LPIPSHeads())
    for k,net in nets.items(): torch.save(net.state_dict(), d/WEIGHTS[k][0])
    torch.save({**AlexNetFeatures().state_dict(), 'classifier.6.bias': torch.zeros(1000)}, d/WEIGHTS['alexnet'][0])

def peak(args:list)->tuple: # (peak RSS in GB, seconds, exit code)
    "Run emo-eval with `args` in a fresh process; its peak resident memory, from the kernel."
    # ru_maxrss of a child starts from its parent's resident size at the fork: this process imports no torch, so it stays small
    t = time.perf_counter()
    p = subprocess.Popen([str(Path(sys.executable).with_name('emo-eval')), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         env={**os.environ, 'TQDM_DISABLE': '1'})
    err = p.stderr.read(); _,status,use = os.wait4(p.pid, 0)
    if status: print(err.decode()[-1000:], file=sys.stderr)
    return use.ru_maxrss / 2**20, time.perf_counter() - t, os.waitstatus_to_exitcode(status)

METRICS = ('fid', 'fvd', 'csim', 'efid_landmarks', 'sync', 'psnr', 'ssim', 'lpips') # emo_repro.eval.METRICS, without importing torch here

def main():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp); (tmp/'w').mkdir()
        subprocess.run([sys.executable, __file__, '--setup', str(tmp)], check=True)  # videos and weights, made in a child
        rows = {}
        for m in ('efid_landmarks', *[m for m in METRICS if m != 'efid_landmarks']):  # the tracking first, in E-FID's run
            if m != 'efid_landmarks': shutil.copytree(tmp/'cache_efid_landmarks', tmp/f'cache_{m}', ignore=lambda d, names: [n for n in names if not n.startswith('track-')])
            gb,s,rc = peak(['--real', str(tmp/'real'), '--fake', str(tmp/'fake'), '--metrics', m, '--weights-dir', str(tmp/'w'),
                            '--out', str(tmp/f'{m}.json'), '--cache', str(tmp/f'cache_{m}'), '--device', 'cpu'])
            rows[m] = dict(peak_rss_gb=round(gb, 3), seconds=round(s, 1), exit_code=rc)
            print(f"{m:15s} peak RSS {gb:5.2f} GB  {s:6.1f} s  exit {rc}", flush=True)
    out = dict(video=f"{SECONDS} s, 512x512, {FPS} fps, with sound", size=512, goal_gb=GOAL_GB, metrics=rows, tracking='in the efid_landmarks run only',
               worst=max(rows, key=lambda m: rows[m]['peak_rss_gb']), machine=dict(cpu=platform.processor() or platform.machine(), cores=os.cpu_count()))
    RESULTS.parent.mkdir(exist_ok=True); tmp = RESULTS.with_suffix('.tmp'); tmp.write_text(json.dumps(out, indent=1)); os.replace(tmp, RESULTS)
    print(f"worst: {out['worst']} at {rows[out['worst']]['peak_rss_gb']} GB (goal < {GOAL_GB} GB); written to {RESULTS}")

if __name__ == '__main__':
    if sys.argv[1:2] == ['--setup']: videos(Path(sys.argv[2])); weights(Path(sys.argv[2])/'w')
    else: main()
