"""kairos-checkpoint: inspect, verify, hash and convert Kairos checkpoints (safetensors).

    kairos-checkpoint inspect FILE
    kairos-checkpoint verify FILE --preset kairos-4b-wam
    kairos-checkpoint hash FILE... [--write-sidecar]
    kairos-checkpoint convert SRC DST [--dtype bf16]

verify judges a file as the kairos backend would: a kairos-nano DiT by its own metadata (its slot
lists, kairos.state_velocity doubling the state width, its preset), a kairos-nano codec or text
encoder file by theirs; every file's header is validated and its `<file>.sha256` sidecar, when
there is one, checked. hash prints sha256sum lines; --write-sidecar writes them as `<file>.sha256`,
which the backend then checks at every start.
"""
from __future__ import annotations

import argparse
import os
import sys

DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def verify_problems(path: str, preset: str) -> tuple[str, list[str]]:
    """(what the file was checked as, problems) for `verify`; [] = it fits. Uses the backend's own
    functions (nano_format, kairos_setup.checkpoint_config, kairos_loading.dit_problems), so a file
    verify accepts is one the backend loads."""
    # torch comes with these: imported when a file is checked, so --help and usage errors stay instant
    from kairos_ros.backends.kairos_loading import dit_problems
    from kairos_ros.backends.kairos_setup import checkpoint_config
    from kairos_ros.model.checkpoint import CheckpointError, compare, read_header
    from kairos_ros.model.config import get_preset
    from kairos_ros.model.nano_format import CODEC_FORMAT, TEXT_FORMAT, conv_codec_for, dit_info, hash_text_for

    header = read_header(path)
    kind = header.metadata.get("kairos.format")
    try:
        if kind in (CODEC_FORMAT, TEXT_FORMAT):
            cfg = get_preset(preset)
            if kind == CODEC_FORMAT:
                module = conv_codec_for(header)
                if module.channels != cfg.video.in_channels:
                    return "codec", [f"{module.channels} latent channels, preset {preset} takes {cfg.video.in_channels}"]
            else:
                module = hash_text_for(header, cfg.video.text_dim)
            return ("codec" if kind == CODEC_FORMAT else "text encoder",
                    compare(header, {k: tuple(v.shape) for k, v in module.state_dict().items()}))
        is_dit = {"action_dit.action_encoder.weight", "action_dit.proprio_encoder.0.weight"} <= set(header.tensors)
        info = dit_info(header) if is_dit else None
        cfg = checkpoint_config(preset, path, info)
    except (CheckpointError, ValueError) as exc:
        return "DiT" if kind not in (CODEC_FORMAT, TEXT_FORMAT) else kind, [str(exc)]
    shown = f"DiT, action_dim {cfg.action.action_dim} / state_dim {cfg.action.state_dim}"
    if info and info.state_velocity:
        shown += f" (state + velocities over {info.state_velocity} observations)"
    return shown, dit_problems(cfg, header)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="kairos-checkpoint", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("inspect", help="keys, shapes, dtypes and parameter counts")
    p.add_argument("file")
    p.add_argument("--keys", action="store_true", help="list every key")
    v = sub.add_parser("verify", help="check that a file fits a preset exactly (strict keys and shapes), by "
                                      "its own kairos-nano metadata as the backend reads it")
    v.add_argument("file")
    v.add_argument("--preset", required=True)
    h = sub.add_parser("hash", help="sha256 of files in sha256sum format (what the backend checks)")
    h.add_argument("files", nargs="+")
    h.add_argument("--write-sidecar", action="store_true", help="write each as FILE.sha256 next to the file")
    c = sub.add_parser("convert", help="copy with floating tensors cast to --dtype")
    c.add_argument("src")
    c.add_argument("dst")
    c.add_argument("--dtype", choices=sorted(DTYPES), default=None)
    args = ap.parse_args(argv)
    # torch only once the arguments are valid: --help and usage errors stay instant
    import torch

    from kairos_ros.model.checkpoint import CheckpointError, convert_checkpoint, file_sha256, read_header, write_sidecar
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
            what, problems = verify_problems(args.file, args.preset)
            if problems:
                print(f"{args.file} does NOT fit preset {args.preset} ({what}):", file=sys.stderr)
                for line in problems:
                    print(f"  {line}", file=sys.stderr)
                return 1
            print(f"{args.file} fits preset {args.preset} exactly ({what})")
            return 0
        if args.cmd == "hash":
            for path in args.files:
                if not os.path.isfile(path):
                    raise CheckpointError(f"'{path}' is not a file")
                if args.write_sidecar:
                    write_sidecar(path)
                    print(f"{file_sha256(path)}  {path}  (written to {path}.sha256)")
                else:
                    print(f"{file_sha256(path)}  {path}")
            return 0
        dtype = getattr(torch, DTYPES[args.dtype]) if args.dtype else None
        n = convert_checkpoint(args.src, args.dst, dtype)
        print(f"wrote {args.dst} ({n} tensors{', ' + args.dtype if args.dtype else ''})")
        return 0
    except (CheckpointError, ValueError, OSError) as exc:
        print(f"kairos-checkpoint: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
