"""Offline held-out evaluation of a run's weights on recordings it never saw, the way kairos-train
scores its validation episodes at the end (kairos_ros.train.evaluate.evaluate_heldout: action MAE
over the 32-row chunk against the commanded positions, beside `hold`; codec PSNR of the frames).

    python heldout_eval.py RUN_DIR PROFILE.yaml BAG_DIR [BAG_DIR ...]

RUN_DIR holds dit/codec/text.safetensors and train.json; PROFILE gives the perception settings
(crops, tiles) the weights were trained with. Prints one JSON object.
"""
import json
import os
import sys

from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.lib.dataset import load_bags, settings_from_profile
from kairos_ros.train.evaluate import evaluate_heldout


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    run, profile, bags = argv[0], argv[1], argv[2:]
    record = json.load(open(os.path.join(run, "train.json")))
    settings = settings_from_profile(profile, action_topic=record["data"]["decode"].get("action_topic") or None)
    episodes, _ = load_bags(bags, settings)
    files = {f"{k}_checkpoint": os.path.join(run, f"{k}.safetensors") for k in ("dit", "codec", "text")}
    result = evaluate_heldout(files, load_embodiment(record["embodiment"]), episodes, record,
                              record.get("instruction", ""), samples=8)
    result["actions"] = {k: v for k, v in result["actions"].items() if not k.endswith("per_step")}
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
