#!/usr/bin/env python3
"""Repairs the table export that Debian's wasm-opt (binaryen 108) gets wrong.

wasm-bindgen's module has two tables: the function table (0) and the
externref table it exports as `__wbindgen_externrefs` (1). binaryen 108
writes that export pointing at table 0 (even with no passes), so the page
fails at start with "WebAssembly.Table.set(): ... function-typed object".
This points the export back at the module's only externref table. Usage:
    fix_table_export.py MODULE.wasm
"""

import sys

NAME = b"__wbindgen_externrefs"
FUNCREF, EXTERNREF = 0x70, 0x6F


def leb(data, pos):
    """Reads an unsigned LEB128 at pos: (value, position after it)."""
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def sections(data):
    pos = 8
    while pos < len(data):
        sid, after_id = data[pos], pos + 1
        size, body = leb(data, after_id)
        yield sid, body, body + size
        pos = body + size


def main(path):
    data = bytearray(open(path, "rb").read())
    if data[:4] != b"\0asm":
        sys.exit(f"{path}: not a wasm module")
    imported_tables, tables, export_at = 0, [], None
    for sid, start, end in sections(data):
        if sid == 2:  # imports: count the tables among them
            count, pos = leb(data, start)
            for _ in range(count):
                for _ in range(2):
                    n, pos = leb(data, pos)
                    pos += n
                kind = data[pos]
                pos += 1
                if kind == 0:
                    _, pos = leb(data, pos)
                elif kind == 1:
                    imported_tables += 1
                    pos += 1
                    flags, pos = leb(data, pos)
                    _, pos = leb(data, pos)
                    if flags & 1:
                        _, pos = leb(data, pos)
                elif kind == 2:
                    flags, pos = leb(data, pos)
                    _, pos = leb(data, pos)
                    if flags & 1:
                        _, pos = leb(data, pos)
                else:
                    pos += 2
        elif sid == 4:  # tables: their element types
            count, pos = leb(data, start)
            for _ in range(count):
                tables.append(data[pos])
                flags, pos = leb(data, pos + 1)
                _, pos = leb(data, pos)
                if flags & 1:
                    _, pos = leb(data, pos)
        elif sid == 7:  # exports: where ours is
            count, pos = leb(data, start)
            for _ in range(count):
                n, pos = leb(data, pos)
                name = bytes(data[pos : pos + n])
                pos += n
                kind = data[pos]
                index_at = pos + 1
                index, pos = leb(data, index_at)
                if name == NAME and kind == 1:
                    export_at = (index_at, pos, index)
    if export_at is None:
        print(f"{path}: no {NAME.decode()} table export, nothing to repair")
        return
    externref = [imported_tables + i for i, t in enumerate(tables) if t == EXTERNREF]
    if len(externref) != 1:
        sys.exit(f"{path}: expected one externref table, found {len(externref)}")
    at, after, index = export_at
    if index == externref[0]:
        print(f"{path}: {NAME.decode()} already exports table {index}")
        return
    if after - at != 1 or externref[0] > 0x7F:
        sys.exit(f"{path}: cannot repair the export in place")
    data[at] = externref[0]
    open(path, "wb").write(data)
    print(f"{path}: {NAME.decode()} now exports table {externref[0]} (was {index})")


if __name__ == "__main__":
    main(sys.argv[1])
