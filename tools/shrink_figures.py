"Re-encode large PNG outputs of notebooks as 256-colour palette PNGs when that is at least 30 % smaller."
import base64, io, json, sys
from PIL import Image
def shrink(p, min_bytes=40000):
    nb = json.load(open(p)); saved = 0
    for c in nb['cells']:
        for o in c.get('outputs', []):
            d = o.get('data', {})
            if 'image/png' not in d: continue
            b64 = ''.join(d['image/png']) if isinstance(d['image/png'], list) else d['image/png']
            raw = base64.b64decode(b64)
            if len(raw) < min_bytes: continue
            im = Image.open(io.BytesIO(raw)).convert('RGB')
            q = im.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
            buf = io.BytesIO(); q.save(buf, 'PNG', optimize=True); new = buf.getvalue()
            if len(new) < 0.7 * len(raw):
                d['image/png'] = base64.b64encode(new).decode() + '\n'; saved += len(raw) - len(new)
    with open(p, 'w') as f: json.dump(nb, f, indent=1, ensure_ascii=False); f.write('\n')
    return saved
for p in sys.argv[1:]: print(p, shrink(p))
