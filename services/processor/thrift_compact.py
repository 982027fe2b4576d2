"""Thrift's compact protocol, generically: enough to read, edit and rewrite a Parquet footer.

Values decode into plain Python: a struct is a `Struct` (fields in wire order, each with
its id, wire type and value), a list or set a `List`, a map a `Map`; integers, doubles,
bytes and booleans as themselves. Nothing is schema-bound, so fields this code does not
know pass through unchanged, and an unedited value encodes to the bytes it came from.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

STOP, TRUE, FALSE, I8, I16, I32, I64, DOUBLE, BINARY, LIST, SET, MAP, STRUCT = range(13)


class ThriftError(ValueError):
    """The bytes are not a well-formed compact-protocol value."""


@dataclass
class List:
    """A list or set (the field's wire type tells which): element wire type and items
    (booleans as their wire byte)."""

    elem_type: int
    items: list


@dataclass
class Map:
    """A map: key and value wire types and (key, value) pairs."""

    key_type: int
    value_type: int
    items: list


@dataclass
class Struct:
    """A struct's fields in wire order: [field id, wire type, value] (booleans as bool)."""

    fields: list = field(default_factory=list)

    def get(self, fid: int, default=None):
        """The value of field fid, or default when absent."""
        for found, _, value in self.fields:
            if found == fid:
                return value
        return default

    def set(self, fid: int, wire_type: int, value) -> None:
        """Replace field fid's value, or add the field in id order."""
        for entry in self.fields:
            if entry[0] == fid:
                entry[1:] = [wire_type, value]
                return
        self.fields.append([fid, wire_type, value])
        self.fields.sort(key=lambda entry: entry[0])

    def drop(self, *fids: int) -> None:
        """Remove the fields with these ids (absent ones are ignored)."""
        self.fields = [entry for entry in self.fields if entry[0] not in fids]


class _Reader:
    def __init__(self, data: bytes, pos: int = 0):
        self.data, self.pos = memoryview(data), pos

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise ThriftError(f"truncated at byte {self.pos}")
        self.pos += 1
        return self.data[self.pos - 1]

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 70:
                raise ThriftError(f"varint too long at byte {self.pos}")

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ThriftError(f"{n} bytes wanted at byte {self.pos}, past the end")
        self.pos += n
        return bytes(self.data[self.pos - n:self.pos])

    def value(self, wire_type: int, depth: int = 0):
        if depth > 64:
            raise ThriftError("nesting deeper than 64")
        if wire_type in (TRUE, FALSE):  # a collection element: its own byte
            return self.byte()
        if wire_type == I8:
            return struct.unpack("b", self.take(1))[0]
        if wire_type in (I16, I32, I64):
            return self.zigzag()
        if wire_type == DOUBLE:
            return struct.unpack("<d", self.take(8))[0]
        if wire_type == BINARY:
            return self.take(self.varint())
        if wire_type in (LIST, SET):
            return self.collection(depth)
        if wire_type == MAP:
            return self.mapping(depth)
        if wire_type == STRUCT:
            return self.struct(depth)
        raise ThriftError(f"unknown wire type {wire_type} at byte {self.pos}")

    def collection(self, depth: int) -> List:
        header = self.byte()
        size, elem_type = header >> 4, header & 0x0F
        if size == 15:
            size = self.varint()
        return List(elem_type, [self.value(elem_type, depth + 1) for _ in range(size)])

    def mapping(self, depth: int) -> Map:
        size = self.varint()
        if not size:
            return Map(0, 0, [])
        types = self.byte()
        key_type, value_type = types >> 4, types & 0x0F
        return Map(key_type, value_type, [(self.value(key_type, depth + 1),
                                           self.value(value_type, depth + 1))
                                          for _ in range(size)])

    def struct(self, depth: int = 0) -> Struct:
        fields, last = [], 0
        while (header := self.byte()) != STOP:
            delta, wire_type = header >> 4, header & 0x0F
            fid = last + delta if delta else self.zigzag()
            value = (wire_type == TRUE) if wire_type in (TRUE, FALSE) else \
                self.value(wire_type, depth + 1)
            fields.append([fid, wire_type, value])
            last = fid
        return Struct(fields)


def decode_struct(data: bytes, pos: int = 0) -> tuple[Struct, int]:
    """The struct starting at data[pos], and the position just after it."""
    reader = _Reader(data, pos)
    return reader.struct(), reader.pos


class _Writer:
    def __init__(self):
        self.out = bytearray()

    def varint(self, n: int) -> None:
        while n > 0x7F:
            self.out.append((n & 0x7F) | 0x80)
            n >>= 7
        self.out.append(n)

    def zigzag(self, n: int) -> None:
        self.varint((n << 1) ^ (n >> 63) if n < 0 else n << 1)

    def value(self, wire_type: int, value) -> None:
        if wire_type in (TRUE, FALSE):
            self.out.append(value)
        elif wire_type == I8:
            self.out += struct.pack("b", value)
        elif wire_type in (I16, I32, I64):
            self.zigzag(value)
        elif wire_type == DOUBLE:
            self.out += struct.pack("<d", value)
        elif wire_type == BINARY:
            self.varint(len(value))
            self.out += value
        elif wire_type in (LIST, SET):
            self.collection(value)
        elif wire_type == MAP:
            self.mapping(value)
        elif wire_type == STRUCT:
            self.struct(value)
        else:
            raise ThriftError(f"unknown wire type {wire_type}")

    def collection(self, value: List) -> None:
        size = len(value.items)
        if size < 15:
            self.out.append(size << 4 | value.elem_type)
        else:
            self.out.append(0xF0 | value.elem_type)
            self.varint(size)
        for item in value.items:
            self.value(value.elem_type, item)

    def mapping(self, value: Map) -> None:
        self.varint(len(value.items))
        if value.items:
            self.out.append(value.key_type << 4 | value.value_type)
        for key, item in value.items:
            self.value(value.key_type, key)
            self.value(value.value_type, item)

    def struct(self, value: Struct) -> None:
        last = 0
        for fid, wire_type, item in value.fields:
            if wire_type in (TRUE, FALSE):
                wire_type = TRUE if item else FALSE
            delta = fid - last
            if 0 < delta <= 15:
                self.out.append(delta << 4 | wire_type)
            else:
                self.out.append(wire_type)
                self.zigzag(fid)
            if wire_type not in (TRUE, FALSE):
                self.value(wire_type, item)
            last = fid
        self.out.append(STOP)


def encode_struct(value: Struct) -> bytes:
    """The compact-protocol bytes of a struct."""
    writer = _Writer()
    writer.struct(value)
    return bytes(writer.out)
