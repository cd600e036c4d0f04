"""NASNet-style cell genotypes: what a cell is, as data, and how a search samples and mutates one.

A cell has two inputs (state 0: the output of the cell before the previous one, state 1: the previous
cell's output) and B blocks; block b picks two earlier states (0 .. b+1), applies one op to each and adds
them, making state b+2. The cell's output concatenates the blocks no other block used. A genotype is a
normal cell and a reduction cell, written as one readable string so that MLflow shows and compares it:

    normal: sep3x3(1)+identity(0), max3x3(0)+sep5x5(2); reduce: avg3x3(0)+sep7x7(1), identity(2)+max3x3(1)

No framework import here: spaces validate genotypes, and tables read them, without TensorFlow.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from search.errors import GenotypeError
from search.spec.fields import clip

MAX_BLOCKS = 10  # blocks per cell, searched or written out (NASNet uses 5)
MAX_GENOTYPE_CHARS = 2_000  # ten blocks of the longest op, twice, with room for spaces
OPS = ("identity", "sep3x3", "sep5x5", "sep7x7", "avg3x3", "max3x3", "conv1x7_7x1", "dil3x3")
CELL_KINDS = ("normal", "reduce")


@dataclass(frozen=True)
class Block:
    inputs: tuple[int, int]
    ops: tuple[str, str]

    def __str__(self) -> str:
        return "+".join(f"{op}({state})" for op, state in zip(self.ops, self.inputs))


@dataclass(frozen=True)
class Genotype:
    normal: tuple[Block, ...]
    reduce: tuple[Block, ...]

    def __str__(self) -> str:
        return "; ".join(f"{kind}: {', '.join(map(str, self.cell(kind)))}" for kind in CELL_KINDS)

    def cell(self, kind: str) -> tuple[Block, ...]:
        return self.normal if kind == "normal" else self.reduce

    @staticmethod
    def unused(cell: tuple[Block, ...]) -> list[int]:
        """States of blocks that no later block reads: the ones the cell's output concatenates."""
        used = {state for block in cell for state in block.inputs}
        return [b + 2 for b in range(len(cell)) if b + 2 not in used]


_BLOCK = re.compile(r"^\s*(\w+)\((\d+)\)\s*\+\s*(\w+)\((\d+)\)\s*$")


def parse_genotype(text: str) -> Genotype:
    """The inverse of `str(genotype)`; every mistake is reported with the cell and block it is in.

    Length and blocks are bounded first, so a hostile string costs no more than a valid one to refuse."""
    if len(text) > MAX_GENOTYPE_CHARS:
        raise GenotypeError(f"{len(text):,} characters; a genotype is at most {MAX_GENOTYPE_CHARS:,} ({MAX_BLOCKS} blocks per cell)")
    cells: dict[str, tuple[Block, ...]] = {}
    for part in text.split(";"):
        kind, colon, body = part.partition(":")
        kind = kind.strip()
        if not colon or kind not in CELL_KINDS:
            raise GenotypeError(f"expected 'normal: ...; reduce: ...', got {clip(part.strip())}")
        if kind in cells:
            raise GenotypeError(f"the {kind} cell is given twice")
        block_texts = body.split(",")
        if len(block_texts) > MAX_BLOCKS:
            raise GenotypeError(f"the {kind} cell has {len(block_texts)} blocks; a cell has at most {MAX_BLOCKS}")
        blocks = []
        for b, block_text in enumerate(block_texts):
            match = _BLOCK.match(block_text)
            if not match:
                raise GenotypeError(f"{kind} block {b + 1}: expected 'op(state)+op(state)', got {clip(block_text.strip())}")
            op_a, state_a, op_b, state_b = match.groups()
            for op, state in ((op_a, int(state_a)), (op_b, int(state_b))):
                if op not in OPS:
                    raise GenotypeError(f"{kind} block {b + 1}: unknown op {clip(op)}; known: {', '.join(OPS)}")
                if state > b + 1:
                    raise GenotypeError(
                        f"{kind} block {b + 1}: state {state} does not exist yet (states 0 and 1 are the cell's "
                        f"inputs, block k makes state k+1, so block {b + 1} may read 0..{b + 1})"
                    )
            blocks.append(Block((int(state_a), int(state_b)), (op_a, op_b)))
        cells[kind] = tuple(blocks)
    missing = [kind for kind in CELL_KINDS if kind not in cells]
    if missing:
        raise GenotypeError(f"the {' and '.join(missing)} cell is missing; expected 'normal: ...; reduce: ...'")
    return Genotype(**cells)


def hyperparameter_names(blocks: int) -> dict[str, list]:
    """The searched choices of a cell space, one per op and input of every block: name -> index range
    (inputs) or None (ops). The names are what KerasTuner's oracles see and mutate."""
    names: dict[str, list] = {}
    for kind in CELL_KINDS:
        for b in range(blocks):
            for side in ("a", "b"):
                names[f"{kind}_{b + 1}_input_{side}"] = list(range(b + 2))
                names[f"{kind}_{b + 1}_op_{side}"] = None
    return names


def genotype_from_values(values: dict, blocks: int) -> Genotype:
    """Hyperparameter values (names from `hyperparameter_names`) -> the genotype they describe."""
    cells = {}
    for kind in CELL_KINDS:
        cells[kind] = tuple(
            Block(
                (values[f"{kind}_{b}_input_a"], values[f"{kind}_{b}_input_b"]),
                (values[f"{kind}_{b}_op_a"], values[f"{kind}_{b}_op_b"]),
            )
            for b in range(1, blocks + 1)
        )
    return Genotype(**cells)


def random_genotype(blocks: int, ops: tuple[str, ...] | list[str], rng: random.Random) -> Genotype:
    """A uniformly sampled genotype (what random search and evolution's first population draw)."""
    cells = {
        kind: tuple(
            Block((rng.randrange(b + 2), rng.randrange(b + 2)), (rng.choice(ops), rng.choice(ops))) for b in range(blocks)
        )
        for kind in CELL_KINDS
    }
    return Genotype(**cells)
