/* A pre-pass over protobuf wire format that bounds message nesting before protobuf-c
 * unpacks it: ONNX messages nest recursively (an attribute holds a graph holding nodes
 * holding attributes), and protobuf-c recurses once per level with no limit of its own, so a
 * small hostile file could otherwise exhaust the stack. Field types come from protobuf-c's
 * generated descriptors; nothing here decodes values. */
#include "onnx_internal.h"

static bool varint(const uint8_t *p, size_t len, size_t *off, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*off >= len) return false;
        uint8_t byte = p[(*off)++];
        *v |= (uint64_t)(byte & 0x7F) << shift;
        if (!(byte & 0x80)) return true;
    }
    return false;
}

static bool walk(const uint8_t *p, size_t len, const ProtobufCMessageDescriptor *d, int depth)
{
    if (depth <= 0) return false;
    size_t off = 0;
    while (off < len) {
        uint64_t key, v;
        if (!varint(p, len, &off, &key)) return false;
        switch (key & 7) {
        case 0: /* varint */
            if (!varint(p, len, &off, &v)) return false;
            break;
        case 1: /* 64-bit */
            if (len - off < 8) return false;
            off += 8;
            break;
        case 5: /* 32-bit */
            if (len - off < 4) return false;
            off += 4;
            break;
        case 2: { /* length-delimited: a sub-message when the schema says so */
            if (!varint(p, len, &off, &v) || v > len - off) return false;
            const ProtobufCFieldDescriptor *f =
                key >> 3 <= UINT32_MAX
                    ? protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3))
                    : NULL;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE &&
                !walk(p + off, (size_t)v, f->descriptor, depth - 1))
                return false;
            off += (size_t)v;
            break;
        }
        default: /* groups (3, 4) and invalid wire types: protobuf-c rejects them too */
            return false;
        }
    }
    return true;
}

bool tq_onnx_depth_ok(const uint8_t *data, size_t len, const ProtobufCMessageDescriptor *d,
                      int max_depth)
{
    return walk(data, len, d, max_depth);
}
