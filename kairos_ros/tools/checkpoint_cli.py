"""kairos-checkpoint: inspect, verify and convert Kairos checkpoints (safetensors).

    kairos-checkpoint inspect FILE
    kairos-checkpoint verify FILE --preset kairos-4b-wam
    kairos-checkpoint convert SRC DST [--dtype bf16]
"""
from __future__ import annotations

import argparse
import sys

DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="kairos-checkpoint", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("inspect", help="keys, shapes, dtypes and parameter counts")
    p.add_argument("file")
    p.add_argument("--keys", action="store_true", help="list every key")
    v = sub.add_parser("verify", help="check that a file fits a preset exactly (strict keys and shapes)")
    v.add_argument("file")
    v.add_argument("--preset", required=True)
    c = sub.add_parser("convert", help="copy with floating tensors cast to --dtype")
    c.add_argument("src")
    c.add_argument("dst")
    c.add_argument("--dtype", choices=sorted(DTYPES), default=None)
    args = ap.parse_args(argv)

    import torch

    from kairos_ros.model.checkpoint import CheckpointError, compare, convert_checkpoint, read_header
    try:
        if args.cmd == "inspect":
            h = read_header(args.file)
            groups: dict[str, int] = {}
            for key, (shape, _) in h.tensors.items():
                n = 1
                for d in shape:
                    n *= d
                groups[key.split(".")[0]] = groups.get(key.split(".")[0], 0) + n
            dtypes = sorted({d for _, d in h.tensors.values()})
            print(f"{args.file}: {len(h.tensors)} tensors, {h.num_params:,} values, dtypes {dtypes}")
            for prefix, n in sorted(groups.items()):
                print(f"  {prefix}: {n:,}")
            if args.keys:
                for key in sorted(h.tensors):
                    print(f"  {key}\t{h.tensors[key][0]}\t{h.tensors[key][1]}")
            return 0
        if args.cmd == "verify":
            from kairos_ros.model.config import get_preset
            from kairos_ros.model.wam import KairosWAM
            with torch.device("meta"):
                model = KairosWAM(get_preset(args.preset))
            problems = compare(read_header(args.file), {k: tuple(t.shape) for k, t in model.state_dict().items()})
            if problems:
                print(f"{args.file} does NOT fit preset {args.preset}:", file=sys.stderr)
                for line in problems:
                    print(f"  {line}", file=sys.stderr)
                return 1
            print(f"{args.file} fits preset {args.preset} exactly")
            return 0
        dtype = getattr(torch, DTYPES[args.dtype]) if args.dtype else None
        n = convert_checkpoint(args.src, args.dst, dtype)
        print(f"wrote {args.dst} ({n} tensors{', ' + args.dtype if args.dtype else ''})")
        return 0
    except (CheckpointError, ValueError) as exc:
        print(f"kairos-checkpoint: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
