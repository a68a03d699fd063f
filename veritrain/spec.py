"""The JobSpec: what a requester asks for, public on IPFS, its CID bound on-chain.

Frozen pydantic models, loaded from YAML, JSON or a dict. An invalid spec raises ONE
:class:`~veritrain.errors.SpecError` listing every problem with its path
(``optimizer.lr: must be > 0``), field checks and cross-field checks together (``k`` divides
``steps_per_task``; the model exists in the zoo and accepts its arguments for this data).
``canonical_json()`` (RFC 8785, :func:`veritrain.canon.jcs`) and ``digest()`` (its sha256) give
the bytes everyone hashes (docs/spec/README.md, section 2). No torch here.

The JSON Schema lives at ``veritrain/schemas/jobspec.schema.json``; regenerate it with
``veritrain spec schema`` after changing a model (a test fails when it drifts).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_serializer, model_validator

from veritrain.canon import MAX_SAFE_INTEGER, jcs
from veritrain.errors import SpecError
from veritrain.training import registry

SCHEMA_VERSION: Literal[1] = 1
#: Version 2 adds ``data.label`` and ``data.preprocessing``; a version-1 spec (everything
#: written before them) keeps its canonical bytes and digest, since both are left out of the
#: canonical JSON at their defaults.
LATEST_SCHEMA_VERSION: Literal[2] = 2
SCHEMA_PATH = Path(__file__).parent / "schemas" / "jobspec.schema.json"

Address = str  # 0x-prefixed 20-byte hex, checked by VerificationPolicy


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class ModelSpec(_Frozen):
    name: str = Field(description="a model of the zoo (veritrain.training.zoo)", min_length=1)
    args: dict[str, Any] = Field(default_factory=dict, description="the builder's arguments")


class OptimizerSpec(_Frozen):
    name: Literal["sgd", "adam", "adamw"]
    lr: float = Field(gt=0)
    momentum: float = Field(default=0.0, ge=0, lt=1, description="sgd only")
    nesterov: bool = Field(default=False, description="sgd only")
    weight_decay: float = Field(default=0.0, ge=0)
    betas: tuple[float, float] = Field(default=(0.9, 0.999), description="adam/adamw only")
    eps: float = Field(default=1e-8, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> OptimizerSpec:
        if not all(0 <= b < 1 for b in self.betas):
            raise ValueError("betas: each must be in [0, 1)")
        if self.nesterov and (self.name != "sgd" or self.momentum == 0):
            raise ValueError("nesterov: needs sgd with momentum > 0")
        return self


class ToleranceSpec(_Frozen):
    mode: Literal["exact", "tolerance"] = "exact"
    bound: float | None = Field(
        default=None, gt=0,
        description="tolerance mode: the largest accepted normalized distance between a replayed "
        "and a claimed checkpoint (see docs/engine.md); calibrate with veritrain.training.tolerance",
    )

    @model_validator(mode="after")
    def _bound_iff_tolerance(self) -> ToleranceSpec:
        if self.mode == "tolerance" and self.bound is None:
            raise ValueError("bound: required in tolerance mode")
        if self.mode == "exact" and self.bound is not None:
            raise ValueError("bound: only allowed in tolerance mode")
        return self


class CudaProfile(_Frozen):
    """The CUDA device class a ``replay.device: cuda`` job pins, and the settings that make CUDA
    training repeatable on it (docs/gpu.md). The class is what torch reports on the worker:
    ``torch.cuda.get_device_name``, ``get_device_capability``, ``torch.version.cuda`` and
    ``torch.backends.cudnn.version()``; ``veritrain.training.devices`` reads them."""

    gpu_name: str = Field(min_length=1, description="e.g. 'NVIDIA H200' (torch.cuda.get_device_name)")
    compute_capability: str = Field(pattern=r"^\d+\.\d+$", description="e.g. '9.0'")
    cuda_version: str = Field(pattern=r"^\d+\.\d+$", description="torch.version.cuda, e.g. '13.0'")
    cudnn_version: int = Field(ge=1, description="torch.backends.cudnn.version(), e.g. 91000")
    tf32: Literal[False] = Field(
        default=False, description="TF32 for matmul and cuDNN: always off (its rounding differs "
        "from float32 and a CPU replay could not follow it)")
    cudnn_benchmark: Literal[False] = Field(
        default=False, description="cuDNN autotuning: always off (it picks kernels by timing)")
    cublas_workspace_config: str | None = Field(
        default=":4096:8", pattern=r"^:\d+:\d+$",
        description="CUBLAS_WORKSPACE_CONFIG, set before CUDA initialises (older torch versions "
        "need it for deterministic cuBLAS); null = leave unset")
    default_dtype: Literal["float32", "float64"] = Field(
        default="float32", description="torch's default dtype: the model's weights, optimizer state "
        "and float features. float64 makes a cross-device (tolerance-mode) replay about a billion "
        "times closer to the worker's result, so its bound can see a single changed weight; on "
        "Hopper GPUs float64 matmuls run about as fast as float32 with TF32 off (docs/gpu.md)")
    autocast: Literal["none", "bf16"] = Field(
        default="none", description="mixed precision: bf16 autocast of the forward pass; off by "
        "default (a CPU verifier replays bf16 with a much larger honest distance)")

    def device_class(self) -> str:
        """One line naming the class, e.g. ``NVIDIA H200 (sm 9.0, CUDA 13.0, cuDNN 91000)``."""
        return (f"{self.gpu_name} (sm {self.compute_capability}, CUDA {self.cuda_version}, "
                f"cuDNN {self.cudnn_version})")


class ReplayProfile(_Frozen):
    """What a job pins so that replay is bitwise (docs/engine.md, toolchain.md)."""

    torch_version: str = Field(pattern=r"^\d+\.\d+\.\d+$", description="e.g. 2.13.0")
    device: Literal["cpu", "cuda"] = Field(
        default="cpu", description="cuda: train on the GPU class in ``cuda`` (schema_version 2)")
    cuda: CudaProfile | None = Field(default=None, description="device: cuda only")
    threads: int = Field(ge=1, le=256, description="intra-op threads (torch, OMP, MKL)")
    mkl_cbwr: str | None = Field(
        default="AVX2,STRICT", description="MKL_CBWR, set before torch loads; null = unset"
    )
    cpu_isa: Literal["default", "avx2", "avx512"] = Field(
        default="avx2", description="ATen kernel level (ATEN_CPU_CAPABILITY)"
    )
    deterministic_algorithms: bool = True
    tolerance: ToleranceSpec = Field(default_factory=ToleranceSpec)
    mode: Literal["standard", "portable"] = Field(
        default="standard",
        description="standard: torch's kernels, replay needs this exact environment; portable: the "
        "portable operators (docs/spec/portable.md), replay on any thread count, CPU kernel level "
        "or device with a torch of the same major version (threads, mkl_cbwr and cpu_isa only "
        "record the worker's machine)",
    )

    @model_validator(mode="after")
    def _portable_is_exact(self) -> ReplayProfile:
        if self.mode == "portable" and self.tolerance.mode != "exact":
            raise ValueError("mode: portable replays bitwise; its tolerance.mode must be 'exact'")
        if self.device == "cuda" and self.cuda is None:
            raise ValueError("cuda: device cuda needs the GPU class it pins (gpu_name, "
                             "compute_capability, cuda_version, cudnn_version; see docs/gpu.md)")
        if self.device == "cpu" and self.cuda is not None:
            raise ValueError("cuda: only with device: cuda")
        if self.cuda is not None and self.cuda.default_dtype == "float64" and self.cuda.autocast != "none":
            raise ValueError("cuda.autocast: bf16 autocast undoes default_dtype float64; "
                             "use one or the other")
        if self.device == "cuda" and self.mode == "portable":
            raise ValueError("device: portable mode already replays on any device; use device: cpu")
        return self

    @model_serializer(mode="wrap")
    def _omit_cpu_cuda(self, handler: Any) -> Any:
        """``cuda`` is left out on a CPU profile, so every CPU spec keeps its bytes and digest."""
        out = handler(self)
        if self.cuda is None:
            out.pop("cuda", None)
        return out


class DataSpec(_Frozen):
    input_shape: tuple[int, ...] = Field(min_length=1, description="one example's shape")
    num_classes: int = Field(ge=2, description="classes (or vocabulary size for a language model)")
    format: Literal["npz", "pt", "csv", "image_folder"] = "npz"
    input_dtype: Literal["float32", "int64"] = "float32"
    targets: Literal["class", "sequence"] = Field(
        default="class", description="one label per example, or one per position"
    )
    label: str | int | None = Field(
        default=None, description="schema_version 2, CSV: the label column, by header name or "
        "0-based index (default: the last column); text labels become classes in sorted order")
    preprocessing: Literal["none", "standardize", "minmax"] = Field(
        default="none", description="schema_version 2: a per-feature transform fitted on the training "
        "split by the requester, published in the job document, applied by workers and verifiers")

    @model_validator(mode="after")
    def _positive_dims(self) -> DataSpec:
        if any(d < 1 for d in self.input_shape):
            raise ValueError("input_shape: every dimension must be >= 1")
        return self

    @model_serializer(mode="wrap")
    def _omit_v2_defaults(self, handler: Any) -> Any:
        """Version-2 fields at their defaults are left out, so a version-1 spec's bytes stay."""
        out = handler(self)
        if self.label is None:
            out.pop("label", None)
        if self.preprocessing == "none":
            out.pop("preprocessing", None)
        return out

    def shape(self) -> registry.DataShape:
        return registry.DataShape(self.input_shape, self.num_classes, self.input_dtype, self.targets)


class EvaluationSpec(_Frozen):
    set_cid: str | None = Field(
        default=None, min_length=8,
        description="reserved, must be null: results are evaluated on the requester's held-out split")
    batch_size: int = Field(default=256, ge=1)

    @model_validator(mode="after")
    def _no_remote_set(self) -> EvaluationSpec:
        # kept in the schema (every canonical spec carries it, so its bytes and digests stay);
        # refused rather than silently ignored: nothing fetches such a set yet
        if self.set_cid is not None:
            raise ValueError("set_cid is not supported: a job's result is evaluated on the held-out "
                             "split the requester keeps (post_job's holdout / `job submit --holdout`); "
                             "set it to null")
        return self


class Deadlines(_Frozen):
    """Windows in seconds, each counted from the end of the previous phase."""

    key_window: int = Field(gt=0)
    submission_window: int = Field(gt=0)
    reveal_window: int = Field(gt=0)
    challenge_window: int = Field(gt=0)


class VerificationPolicy(_Frozen):
    verifiers: Literal["open"] | list[Address] = Field(
        default="open", description="'open' or the addresses that may receive the data key"
    )
    full_verification: bool = Field(default=False, description="replay every segment")

    @model_validator(mode="after")
    def _addresses(self) -> VerificationPolicy:
        if isinstance(self.verifiers, list):
            if not self.verifiers:
                raise ValueError("verifiers: an empty list; use 'open' or name at least one address")
            bad = [a for a in self.verifiers if not _is_address(a)]
            if bad:
                raise ValueError(f"verifiers: not 0x-prefixed 20-byte hex addresses: {', '.join(bad)}")
        return self


class DpSgd(_Frozen):
    """DP-SGD (docs/privacy.md, docs/spec/dp.md). Give a target ``epsilon`` or a
    ``noise_multiplier`` (or both); ``post_job`` computes the other with the accountant before
    anything is posted, so a posted spec carries both. The engine trains with
    ``noise_multiplier``."""

    epsilon: float | None = Field(default=None, gt=0, description="target epsilon of the whole job")
    delta: float = Field(gt=0, lt=1)
    noise_multiplier: float | None = Field(default=None, gt=0,
                                           description="noise std / max_grad_norm")
    max_grad_norm: float = Field(gt=0, description="per-example gradient clipping bound (L2)")
    accountant: Literal["rdp"] = "rdp"

    @model_validator(mode="after")
    def _one_of(self) -> DpSgd:
        if self.epsilon is None and self.noise_multiplier is None:
            raise ValueError("privacy.dp_sgd: give epsilon (a target) or noise_multiplier")
        return self


class Privacy(_Frozen):
    dp_sgd: DpSgd | None = None


class TaskKey(_Frozen):
    """One task: one shard in one round."""

    round: int = Field(ge=0)
    shard: int = Field(ge=0)

    def __str__(self) -> str:
        return f"{self.round}:{self.shard}"


class JobSpec(_Frozen):
    schema_version: Literal[1, 2] = SCHEMA_VERSION
    model: ModelSpec
    optimizer: OptimizerSpec
    batch_size: int = Field(ge=1)
    seed: int = Field(ge=0, le=MAX_SAFE_INTEGER, description="< 2**53: every JSON number is a double")
    steps_per_task: int = Field(ge=1)
    checkpoint_interval: int = Field(ge=1, description="k: a checkpoint every k steps")
    rounds: int = Field(default=1, ge=1)
    num_shards: int = Field(ge=1)
    redundancy: int = Field(default=1, ge=1, description="r: workers per task")
    replay: ReplayProfile
    incentive: Literal["replay", "scored"] = "replay"
    data: DataSpec
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    deadlines: Deadlines
    verification: VerificationPolicy = Field(default_factory=VerificationPolicy)
    privacy: Privacy = Field(default_factory=Privacy)

    # -- derived -------------------------------------------------------------------------
    @property
    def num_checkpoints(self) -> int:
        """n + 1 checkpoints h_0..h_n per task, n = steps_per_task / k."""
        return self.steps_per_task // self.checkpoint_interval + 1

    def tasks(self) -> Iterator[TaskKey]:
        for r in range(self.rounds):
            for s in range(self.num_shards):
                yield TaskKey(round=r, shard=s)

    def check_task(self, task: TaskKey) -> None:
        if task.round >= self.rounds or task.shard >= self.num_shards:
            raise SpecError([f"task {task}: outside {self.rounds} rounds x {self.num_shards} shards"])

    # -- bytes ---------------------------------------------------------------------------
    def canonical_json(self) -> str:
        """Every field, defaults included, as RFC 8785 canonical JSON (docs/spec, section 2)."""
        return jcs(self.model_dump(mode="json")).decode()

    def digest(self) -> bytes:
        """sha256 of the UTF-8 bytes of :meth:`canonical_json` (32 bytes)."""
        return hashlib.sha256(jcs(self.model_dump(mode="json"))).digest()

    # -- loading -------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | None = None) -> JobSpec:
        return load_spec(data, source=source)

    @classmethod
    def from_file(cls, path: str | Path) -> JobSpec:
        return load_spec(Path(path))


def _is_address(a: object) -> bool:
    if not isinstance(a, str) or len(a) != 42 or not a.startswith("0x"):
        return False
    try:
        int(a[2:], 16)
    except ValueError:
        return False
    return True


def _read(source: Path | str) -> Any:
    text = Path(source).read_text() if isinstance(source, Path) else source
    try:
        import yaml  # YAML is a superset of JSON

        return yaml.safe_load(text)
    except Exception as exc:  # yaml.YAMLError and friends
        raise SpecError([f"(file): not valid YAML or JSON: {exc}".replace("\n", " ")],
                        str(source) if isinstance(source, Path) else None) from None


def load_spec(obj: Mapping[str, Any] | Path | str, source: str | None = None) -> JobSpec:
    """A JobSpec from a dict, a YAML/JSON file (``Path``) or YAML/JSON text (``str``).

    Raises one :class:`SpecError` listing every problem (``path: message``).
    """
    if isinstance(obj, Path):
        source = source or str(obj)
        try:
            raw: Any = _read(obj)
        except OSError as exc:
            raise SpecError([f"(file): cannot read: {exc.strerror or exc}"], source) from None
    elif isinstance(obj, str):
        raw = _read(obj)
    else:
        raw = obj
    if not isinstance(raw, Mapping):
        raise SpecError([f"(spec): expected a mapping at the top level, got {type(raw).__name__}"], source)
    problems: list[str] = []
    spec: JobSpec | None = None
    try:
        spec = JobSpec.model_validate(dict(raw))
    except ValidationError as exc:
        problems += [registry.format_error(e) for e in exc.errors()]
    problems += _cross_field_problems(raw)
    if problems or spec is None:
        raise SpecError(_unique(problems), source)
    return spec


def _section(model: type[_Frozen], raw: Mapping[str, Any], key: str) -> Any:
    """The validated section ``raw[key]`` or None when it is absent or invalid."""
    try:
        return model.model_validate(raw[key])
    except (KeyError, TypeError, ValidationError):
        return None


def _cross_field_problems(raw: Mapping[str, Any]) -> list[str]:
    """Problems that involve more than one field; sections that failed alone are skipped."""
    problems = []
    steps, k = raw.get("steps_per_task"), raw.get("checkpoint_interval")
    if isinstance(steps, int) and isinstance(k, int) and steps >= 1 and k >= 1 and steps % k:
        problems.append(f"checkpoint_interval: must divide steps_per_task ({k} does not divide {steps})")
    model: ModelSpec | None = _section(ModelSpec, raw, "model")
    data: DataSpec | None = _section(DataSpec, raw, "data")
    if data is not None and raw.get("schema_version", SCHEMA_VERSION) == 1:
        newer = [f"data.{f}" for f in ("label", "preprocessing") if f in (raw.get("data") or {})]
        if newer:
            problems.append(f"schema_version: {', '.join(newer)} need "
                            f"schema_version: {LATEST_SCHEMA_VERSION}")
    replay_raw = raw.get("replay")
    if (isinstance(replay_raw, Mapping) and replay_raw.get("device") == "cuda"
            and raw.get("schema_version", SCHEMA_VERSION) == 1):
        problems.append(f"schema_version: replay.device cuda needs schema_version: {LATEST_SCHEMA_VERSION}")
    if (isinstance(replay_raw, Mapping) and replay_raw.get("device") == "cuda" and model is not None
            and isinstance(model.args.get("dropout"), int | float) and model.args["dropout"] > 0):
        problems.append("model.args.dropout: a CUDA job draws dropout from the GPU's generator, "
                        "which a checkpoint does not carry; use dropout 0 with device cuda")
    if data is not None and data.preprocessing != "none" and (data.input_dtype != "float32"
                                                              or data.targets != "class"):
        problems.append("data.preprocessing: only for float32 features with class targets")
    if model is not None:
        try:
            entry = registry.get(model.name)
        except KeyError as exc:
            problems.append(f"model.name: {exc.args[0]}")
        else:
            problems += entry.problems(model.args, data.shape() if data is not None else None)
            replay = raw.get("replay")
            if isinstance(replay, Mapping) and replay.get("mode") == "portable" and not entry.portable:
                portable = ", ".join(n for n in registry.names() if registry.get(n).portable)
                problems.append(f"replay.mode: model {model.name!r} has no portable form "
                                f"(portable models: {portable})")
    return problems


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def schema_json() -> str:
    """The JobSpec JSON Schema as written to :data:`SCHEMA_PATH`."""
    return json.dumps(JobSpec.model_json_schema(), indent=2, sort_keys=True) + "\n"

