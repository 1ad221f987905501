"""Benchmark of EMO inference (emo_repro.inference): seconds per 12-frame clip and peak memory of the whole pipeline,
`tiny` on CPU, and `sd15` at 512x512, 40 DDIM steps with classifier-free guidance, float16, on CUDA when a GPU is present.

    python benchmarks/inference.py            # writes benchmarks/results/inference.json

Random weights (the time does not depend on their values); the bundled portrait and speech as inputs. A clip's time
covers ReferenceNet on its motion frames, its denoising steps (two branches in one batch) and decoding its frames;
face detection and wav2vec run once per video and are reported apart. The paper reports about 15 s per 12-frame clip.
Long audio: the peak RSS of a whole `emo-generate`-style run (tiny preset, 64x64, 1 DDIM step without guidance: memory does not
depend on the step count) for 10 s, 60 s and 120 s of speech, each in a fresh process, streaming the MP4 (the default)
beside the same run keeping every frame in memory (`return_frames=True`).
Numbers are printed and saved, never asserted.
"""
from __future__ import annotations
import argparse, json, os, platform, resource, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np, torch
from diffusers import AutoencoderKL, DDIMScheduler
from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model
from emo_repro.core import asset, atomic_write
from emo_repro.audio import load_audio
from emo_repro.backbone import EMOUNet
from emo_repro.inference import EMOPipeline
from emo_repro.portraits import face_crop, find_face, load_image
from emo_repro.presets import NOISE_SCHEDULE, SD15_VAE
from backbone import peak_rss, peak_rss_reset, sync  # benchmarks/backbone.py

RESULTS = Path(__file__).parent/'results'/'inference.json'

def sd15_pipeline(device)->EMOPipeline:
    "EMO at paper scale with random weights, built on `device` in float16: SD1.5 VAE, sd15 EMOUNet, wav2vec2-base."
    with torch.device(device):
        unet, vae, w2v = EMOUNet.from_preset('sd15'), AutoencoderKL(**SD15_VAE), Wav2Vec2Model(Wav2Vec2Config())
    unet, vae, w2v = (m.eval().half() for m in (unet, vae, w2v))
    return EMOPipeline(vae, unet, w2v, Wav2Vec2FeatureExtractor(), DDIMScheduler(**NOISE_SCHEDULE, set_alpha_to_one=False))

def time_pipeline(pipe:EMOPipeline, clips:int=3, steps:int=40, guidance:float=3.5)->dict:
    "Seconds per 12-frame clip (mean over `clips` chained clips) and peak memory, after a one-step warm-up."
    device = pipe.device
    portrait, wave = load_image(asset('astronaut.png')), load_audio(asset('speech_en.wav'))
    T = 12 * clips
    t0 = time.perf_counter(); box = find_face(portrait); t1 = time.perf_counter()
    audio = pipe.track_features(wave[:T * 640], T); audio.features(0, T); sync(device); t2 = time.perf_counter()
    crop, cbox = face_crop(portrait, pipe.resolution, box)
    pipe.generate(crop, cbox, pipe.track_features(wave[:12 * 640], 12), num_inference_steps=1, guidance_scale=guidance)  # warm-up
    if device.type == 'cuda': torch.cuda.reset_peak_memory_stats(); base = torch.cuda.memory_allocated()
    else: base = peak_rss_reset()
    sync(device); t3 = time.perf_counter()
    frames, _ = pipe.generate(crop, cbox, audio, num_inference_steps=steps, guidance_scale=guidance)
    sync(device); t4 = time.perf_counter()
    if device.type == 'cuda': peak, kind = torch.cuda.max_memory_allocated(), 'cuda max_memory_allocated, weights included'
    else: peak, kind = (None if base is None else peak_rss()), 'peak RSS of the whole process during the timed clips'
    return dict(resolution=pipe.resolution, frames=len(frames), clips=clips, steps=steps, guidance_scale=guidance,
                seconds_per_clip=round((t4 - t3) / clips, 3), seconds_per_step=round((t4 - t3) / clips / steps, 4),
                face_detection_s=round(t1 - t0, 3), wav2vec_s=round(t2 - t1, 3),
                peak_memory_MB=None if peak is None else round(peak / 2**20, 1), memory_measure=kind)

def time_demo(steps:int=40)->dict:
    "Wall time of the README's command: the bundled 6.4 s of speech with the tiny preset on the CPU."
    pipe = EMOPipeline.tiny(); pipe.set_progress_bar_config(disable=True)
    t0 = time.perf_counter()
    out = pipe(asset('astronaut.png'), asset('speech_en.wav'), num_inference_steps=steps)
    return dict(frames=len(out.frames), seconds=round(time.perf_counter() - t0, 2))

def _long_audio_child(seconds:float, keep:bool):
    "One run in this fresh process: `seconds` of tiled speech to an MP4; prints the process's peak RSS in MB."
    pipe = EMOPipeline.tiny(); pipe.set_progress_bar_config(disable=True)
    wave = np.tile(load_audio(asset('speech_en.wav')), int(seconds // 6.4) + 1)[:round(seconds * 16000)]
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        pipe(asset('astronaut.png'), wave, Path(d)/'long.mp4', num_inference_steps=1, guidance_scale=1, return_frames=keep)
        dt = time.perf_counter() - t0
    print(json.dumps(dict(peak_rss_MB=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), seconds=round(dt, 1))))

def long_audio_memory(lengths=(10, 60, 120))->dict:
    "Peak RSS of whole runs on long audio, streamed to the MP4 and kept in memory, each in a fresh process."
    res = {}
    for secs in lengths:
        for mode, keep in (('streamed', False), ('frames_kept', True)):
            r = subprocess.run([sys.executable, __file__, '--long-audio-child', str(secs), str(int(keep))], capture_output=True, text=True, check=True)
            res[f'{secs}s_{mode}'] = json.loads(r.stdout.strip().splitlines()[-1])
            print(f'{secs:4d} s of audio, {mode:11s}: {res[f"{secs}s_{mode}"]}', flush=True)
    return dict(resolution=64, steps=1, guidance_scale=1, measure='peak RSS (ru_maxrss) of a fresh process doing one whole run', **res)

def main(clips:int=3, steps:int=40, out:Path=RESULTS, long_audio:bool=True):
    res = dict(torch=torch.__version__, machine=platform.machine(), cpu_threads=torch.get_num_threads(),
               load_average_1min=round(os.getloadavg()[0], 2))  # CPU timings are only comparable at low load
    tiny = EMOPipeline.tiny(); tiny.set_progress_bar_config(disable=True)
    res['tiny_cpu'] = time_pipeline(tiny, clips, steps)
    res['tiny_cpu_readme_demo'] = time_demo(steps)
    if torch.cuda.is_available():
        torch.manual_seed(0)
        pipe = sd15_pipeline('cuda'); pipe.set_progress_bar_config(disable=True)
        res['sd15_cuda'] = dict(device=torch.cuda.get_device_name(), precision='float16 weights',
                                weights_MB=round(torch.cuda.memory_allocated() / 2**20, 1), **time_pipeline(pipe, clips, steps))
    else: res['sd15_cuda'] = 'skipped: no CUDA device'
    if long_audio: res['tiny_cpu_long_audio'] = long_audio_memory()
    print(json.dumps(res, indent=1))
    with atomic_write(out, 'w') as fh: json.dump(res, fh, indent=1)
    print(f'wrote {out}')

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--clips', type=int, default=3, help='chained 12-frame clips per measurement')
    p.add_argument('--steps', type=int, default=40, help='DDIM steps per clip')
    p.add_argument('--out', type=Path, default=RESULTS)
    p.add_argument('--no-long-audio', action='store_true', help='skip the long-audio memory runs (a few minutes)')
    p.add_argument('--long-audio-child', nargs=2, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.long_audio_child: _long_audio_child(float(a.long_audio_child[0]), bool(int(a.long_audio_child[1])))
    else: main(a.clips, a.steps, a.out, not a.no_long_audio)
