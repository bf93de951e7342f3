"""Check every sample before anything is written, and collect every problem (not just the first).

Checks: RGB, depth and GT exist for each stem (layouts.py); each file is readable and decodable; the
three sizes agree (or, with ``size_rule: resize``, have the same aspect ratio, so RGB and depth can be
resized to the GT's size); GT is binary-like; no split is empty; split sizes equal ``expected`` when the
params state them.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable

from aclnet_kd.data import images
from aclnet_kd.data.layouts import Problem, SampleFiles
from aclnet_kd.errors import AclnetError

SIZE_RULES = ("strict", "resize")
# With size_rule "resize", aspect ratios may differ by this much (rounding of odd sizes).
ASPECT_TOLERANCE = 0.02
MAX_REPORTED = 200  # lines in the error message; the count of the rest is still given


@dataclass(frozen=True)
class CheckedSample:
    """A sample that passed: its files, the GT's (original) size and each file's sha256."""

    files: SampleFiles
    height: int
    width: int
    rgb_sha256: str
    depth_sha256: str
    gt_sha256: str
    flat_depth: bool = False   # one value everywhere: usable, but the teacher learns nothing from it
    grey_rgb: bool = False     # the three channels are equal (a greyscale file): accepted, counted


class ValidationError(AclnetError):
    """Raised with every problem found; ``problems`` keeps them for tests and tools."""

    def __init__(self, problems: list[Problem], context: str = "dataset"):
        self.problems = list(problems)
        lines = [f"  {p}" for p in self.problems[:MAX_REPORTED]]
        if len(self.problems) > MAX_REPORTED:
            lines.append(f"  ... and {len(self.problems) - MAX_REPORTED} more")
        super().__init__(f"{context} failed validation with {len(self.problems)} problem(s); "
                         "nothing was written:\n" + "\n".join(lines))


def _aspect_close(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return abs(a[0] / a[1] - b[0] / b[1]) <= ASPECT_TOLERANCE * (b[0] / b[1])


def check_sample(files: SampleFiles, depth_scale: str, size_rule: str
                 ) -> tuple[CheckedSample | None, list[Problem]]:
    """Read and decode the three files of one sample; return it if usable, and its problems."""
    problems: list[Problem] = []
    decoded, shas = {}, {}
    decoders = {"rgb": images.decode_rgb, "depth": lambda b: images.decode_depth(b, depth_scale),
                "gt": images.decode_gt}
    for kind, decode in decoders.items():
        path = getattr(files, kind)
        try:
            data = images.read_bytes(path)
            decoded[kind] = decode(data)
            shas[kind] = images.sha256_hex(data)
        except images.ImageProblem as err:
            problems.append(Problem(str(path), str(err)))
    if problems:
        return None, problems
    gt_size = decoded["gt"].shape[:2]
    for kind in ("rgb", "depth"):
        size = decoded[kind].shape[:2]
        if size == gt_size:
            continue
        if size_rule == "resize" and _aspect_close(size, gt_size):
            continue
        rule = ("sizes must agree (size_rule: strict)" if size_rule == "strict"
                else "aspect ratios differ, cannot resize (size_rule: resize)")
        problems.append(Problem(str(getattr(files, kind)),
                                f"{kind} is {size[0]}x{size[1]} but GT {files.gt.name} is "
                                f"{gt_size[0]}x{gt_size[1]}: {rule}"))
    if problems:
        return None, problems
    depth, rgb = decoded["depth"], decoded["rgb"]
    flat = bool(depth.min() == depth.max())
    grey = bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())
    return CheckedSample(files, gt_size[0], gt_size[1], shas["rgb"], shas["depth"], shas["gt"], flat, grey), []


def validate_splits(splits: dict[str, list[SampleFiles]], *, depth_scale: str = "auto",
                    size_rule: str = "strict", expected: dict[str, int] | None = None,
                    prior_problems: Iterable[Problem] = (), context: str = "dataset",
                    workers: int = 4) -> dict[str, list[CheckedSample]]:
    """Check every sample of every split; raise :class:`ValidationError` listing all problems."""
    problems = list(prior_problems)
    if depth_scale not in images.DEPTH_SCALES:
        raise AclnetError(f"depth_scale must be one of {images.DEPTH_SCALES}, got {depth_scale!r}")
    if size_rule not in SIZE_RULES:
        raise AclnetError(f"size_rule must be one of {SIZE_RULES}, got {size_rule!r}")
    for split, wanted in (expected or {}).items():
        if split not in splits:
            problems.append(Problem(f"{context}/{split}", f"expected split '{split}' ({wanted} samples) "
                                                          "is not in the dataset"))
        elif len(splits[split]) != int(wanted):
            problems.append(Problem(f"{context}/{split}", f"has {len(splits[split])} complete samples, "
                                                          f"params expect {wanted}"))
    checked: dict[str, list[CheckedSample]] = {}
    # cv2 decoding releases the GIL, so threads give real parallelism here.
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for split, samples in splits.items():
            if not samples:
                problems.append(Problem(f"{context}/{split}", "split is empty (no complete RGB/depth/GT triple)"))
                continue
            results = pool.map(lambda f: check_sample(f, depth_scale, size_rule), samples)
            good = []
            for sample, sample_problems in results:
                problems.extend(sample_problems)
                if sample is not None:
                    good.append(sample)
            checked[split] = good
    if problems:
        raise ValidationError(problems, context)
    return checked
