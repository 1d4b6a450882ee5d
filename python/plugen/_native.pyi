"""Type stubs of plugen's Rust extension (crates/plugen-py). Numbers cross as
little-endian float32 / uint8 bytes with their shapes, records as JSON text;
use the numpy API in ``plugen`` rather than this module."""

from typing import Any, Callable, List, Optional, Tuple

Progress = Optional[Callable[[int, int], Any]]

class NativeModel:
    def __init__(
        self,
        model: Optional[str] = None,
        plugin: Optional[str] = None,
        no_plugin: bool = False,
        device: str = "auto",
    ) -> None: ...
    def info(self) -> str: ...
    def sample(
        self,
        n: int,
        seed: int,
        sets: List[str],
        balance: Optional[str],
        bins: int,
        temperature: float,
        verify: str,
        judges: Optional[str],
        progress: Progress,
    ) -> Tuple[List[int], bytes, bytes, str]: ...
    def render(self, latents: bytes, n: int) -> bytes: ...
    def edit(
        self,
        latents: bytes,
        n: int,
        sets: List[str],
        mode: str,
        until_judged: bool,
        judges: Optional[str],
    ) -> Tuple[bytes, str]: ...
    def readout(self, latents: bytes, n: int) -> bytes: ...
    def project(
        self,
        images: bytes,
        n: int,
        h: int,
        w: int,
        use_encoder: bool,
        seed: int,
        steps: Optional[int],
        progress: Progress,
    ) -> Tuple[bytes, List[float]]: ...
    def fill(
        self,
        have: str,
        by: str,
        per_cell: Optional[int],
        total: Optional[int],
        seed: int,
        verify: str,
        judges: Optional[str],
        temperature: float,
        scale: int,
        out: str,
        shard: Optional[str],
        progress: Progress,
    ) -> str: ...

def judge(images: bytes, n: int, h: int, w: int, judges: Optional[str] = None) -> str: ...
def png_bytes(image: bytes, h: int, w: int, scale: int = 1) -> bytes: ...
def default_model_dir() -> str: ...
def is_model_dir(path: str) -> bool: ...
