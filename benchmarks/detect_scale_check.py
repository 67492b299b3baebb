"""Does detecting at half size (YuNet min_face=20, the default) change end-to-end accuracy?

    python benchmarks/detect_scale_check.py

The first 1,200 UTKFace val-split images (cache/splits/utkface.jsonl, sorted by file name) through
the whole pipeline with YuNet at full size (min_face=None, the default) and at half size
(min_face=20); prints accuracy,
agreement and McNemar. Quoted in docs/detectors.md.
"""
import numpy as np
from salface.data.splits import read_split
from salface.detect import get_detector
from salface.pipeline import Analyzer
sp=read_split("cache/splits/utkface.jsonl")["val"][:1200]
res={}
for name,det in [("full",get_detector("yunet", min_face=None)),("half",get_detector("yunet", min_face=20))]:
    an=Analyzer(detector=det, tasks=("age","gender"))
    out=[]
    for s,r in zip(sp, an.analyze_batch([s.path for s in sp])):
        f=max(r.faces, key=lambda f: f.face.score, default=None)
        out.append((f.age.index, f.gender.index) if f else (-1,-1))
    res[name]=np.array(out)
truth=np.array([(s.labels["age"], s.labels["gender"]) for s in sp])
for k,v in res.items():
    print(k, "age", (v[:,0]==truth[:,0]).mean(), "gender", (v[:,1]==truth[:,1]).mean())
print("agree age", (res["full"][:,0]==res["half"][:,0]).mean(), "gender", (res["full"][:,1]==res["half"][:,1]).mean())
from scipy.stats import binomtest
for t in (0,1):
    a=(res["full"][:,t]==truth[:,t]); b=(res["half"][:,t]==truth[:,t])
    n01=int((a&~b).sum()); n10=int((~a&b).sum())
    print("task",t,"discordant",n01,n10,"p",binomtest(min(n01,n10),n01+n10).pvalue if n01+n10 else 1)
