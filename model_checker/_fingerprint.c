/* 64-bit state fingerprints: a function of the value alone, identical in every process.
 *
 * Python's hash() is not a fingerprint (hash(-1) == hash(-2), ints wrap modulo
 * 2**61 - 1, strings are salted), so the checker walks each state here instead.
 * Equal values get equal fingerprints under Python's ==, which is what the
 * visited table deduplicates by: an int, a bool and an IntEnum member with the
 * same value agree, and so do a tuple and a NamedTuple with the same items.
 *
 *   int of any size   a bijective mix of its value when it fits 64 bits, else of
 *                     its little-endian two's-complement bytes
 *   tuple             an order-dependent chain of its items' fingerprints
 *   frozenset         a sum of re-mixed item fingerprints: order-independent
 *                     without sorting
 *   frozen dataclass  its class's qualified name and its compared fields, in order
 *
 * Anything else raises TypeError naming the type, so plainness is checked on
 * every state the checker stores, not on a sample.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define K_MIX 0xd6e8feb86659fd93ULL
#define TAG_INT 0x243f6a8885a308d3ULL
#define TAG_BIGINT 0x13198a2e03707344ULL
#define TAG_TUPLE 0xa4093822299f31d0ULL
#define TAG_SET 0x082efa98ec4e6c89ULL
#define TAG_SET_ITEM 0x452821e638d01377ULL
#define TAG_RECORD 0xbe5466cf34e90c6cULL

/* A bijection of 64-bit words with full avalanche (splitmix64's finaliser family). */
static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 32;
    x *= K_MIX;
    x ^= x >> 32;
    x *= K_MIX;
    x ^= x >> 32;
    return x;
}

static uint64_t fingerprint_bytes(uint64_t tag, const unsigned char *data, Py_ssize_t size) {
    uint64_t h = mix64(tag ^ (uint64_t)size);
    Py_ssize_t i = 0;
    for (; i + 8 <= size; i += 8) {
        uint64_t word;
        memcpy(&word, data + i, 8);
        h = mix64(h ^ word) + K_MIX;
    }
    uint64_t tail = 0;
    for (Py_ssize_t j = size - 1; j >= i; j--) {
        tail = (tail << 8) | data[j];
    }
    return mix64(h ^ tail);
}

/* Helpers written in Python, for the rare paths (set once by model_checker.fingerprint):
 * record_layout(cls) -> (seed, field names) for a frozen dataclass, else None;
 * big_int_bytes(value) -> its little-endian two's-complement bytes. */
static PyObject *record_layout_of;
static PyObject *big_int_bytes;

/* Per class: what record_layout_of said. Classes live as long as the process. */
static PyObject *record_layouts;

static int walk(PyObject *value, uint64_t *out);

/* Fingerprints of recently walked containers, by identity. Successor states share most of
 * their parts with their parent (and hash() caches a frozenset's hash for the same reason),
 * so each part is walked about once. A slot holds a strong reference: the object cannot be
 * freed and its address reused while its fingerprint is cached, and it is immutable. */
#define MEMO_SLOTS 16384
static struct memo_slot {
    PyObject *value;
    uint64_t fingerprint;
} memo[MEMO_SLOTS];

static inline struct memo_slot *memo_slot_of(PyObject *value) {
    uintptr_t address = (uintptr_t)value;
    return &memo[(address >> 4 ^ address >> 18) & (MEMO_SLOTS - 1)];
}

static void memo_clear(void) {
    for (size_t i = 0; i < MEMO_SLOTS; i++) {
        Py_CLEAR(memo[i].value);
    }
}

/* Whether an int fits one internal digit, and its value then: the common case, read directly. */
#if PY_VERSION_HEX >= 0x030C0000
#define SMALL_INT(value, out) \
    (PyUnstable_Long_IsCompact((PyLongObject *)(value)) \
         ? (*(out) = (int64_t)PyUnstable_Long_CompactValue((PyLongObject *)(value)), 1) : 0)
#else
#define SMALL_INT(value, out) \
    (Py_ABS(Py_SIZE(value)) <= 1 \
         ? (*(out) = (int64_t)Py_SIZE(value) * (int64_t)((PyLongObject *)(value))->ob_digit[0], 1) : 0)
#endif

static int fingerprint_int(PyObject *value, uint64_t *out) {
    int64_t compact;
    if (SMALL_INT(value, &compact)) {
        *out = mix64((uint64_t)compact ^ TAG_INT);
        return 0;
    }
    int overflow = 0;
    long long small = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (small == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (!overflow) {
        *out = mix64((uint64_t)small ^ TAG_INT);
        return 0;
    }
    PyObject *data = PyObject_CallOneArg(big_int_bytes, value);
    if (data == NULL) {
        return -1;
    }
    if (!PyBytes_Check(data)) {
        Py_DECREF(data);
        PyErr_SetString(PyExc_TypeError, "big_int_bytes must return bytes");
        return -1;
    }
    *out = fingerprint_bytes(TAG_BIGINT, (const unsigned char *)PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data));
    Py_DECREF(data);
    return 0;
}

static int fingerprint_tuple(PyObject *value, uint64_t *out) {
    Py_ssize_t size = PyTuple_GET_SIZE(value);
    uint64_t h = mix64(TAG_TUPLE ^ (uint64_t)size);
    for (Py_ssize_t i = 0; i < size; i++) {
        uint64_t item;
        if (walk(PyTuple_GET_ITEM(value, i), &item) < 0) {
            return -1;
        }
        h = mix64(h ^ item) + K_MIX;
    }
    *out = mix64(h);
    return 0;
}

static int fingerprint_frozenset(PyObject *value, uint64_t *out) {
    uint64_t sum = 0;
#if PY_VERSION_HEX < 0x030D0000
    Py_ssize_t position = 0;
    PyObject *key;
    Py_hash_t ignored;
    while (_PySet_NextEntry(value, &position, &key, &ignored)) {
        uint64_t item;
        if (walk(key, &item) < 0) {
            return -1;
        }
        sum += mix64(item ^ TAG_SET_ITEM);
    }
#else
    PyObject *items = PyObject_GetIter(value);
    PyObject *key;
    if (items == NULL) {
        return -1;
    }
    while ((key = PyIter_Next(items)) != NULL) {
        uint64_t item;
        int status = walk(key, &item);
        Py_DECREF(key);
        if (status < 0) {
            Py_DECREF(items);
            return -1;
        }
        sum += mix64(item ^ TAG_SET_ITEM);
    }
    Py_DECREF(items);
    if (PyErr_Occurred()) {
        return -1;
    }
#endif
    *out = mix64(mix64(TAG_SET ^ (uint64_t)PySet_GET_SIZE(value)) ^ sum);
    return 0;
}

/* The layout of a frozen, eq-comparing dataclass, or None; a borrowed reference. */
static PyObject *record_layout(PyTypeObject *type) {
    PyObject *known = PyDict_GetItemWithError(record_layouts, (PyObject *)type);
    if (known != NULL || PyErr_Occurred()) {
        return known;
    }
    PyObject *layout = PyObject_CallOneArg(record_layout_of, (PyObject *)type);
    if (layout == NULL) {
        return NULL;
    }
    if (layout != Py_None && !(PyTuple_Check(layout) && PyTuple_GET_SIZE(layout) == 2 &&
                               PyLong_Check(PyTuple_GET_ITEM(layout, 0)) &&
                               PyTuple_Check(PyTuple_GET_ITEM(layout, 1)))) {
        Py_DECREF(layout);
        PyErr_SetString(PyExc_TypeError, "record_layout must return (int seed, tuple of names) or None");
        return NULL;
    }
    int failed = PyDict_SetItem(record_layouts, (PyObject *)type, layout);
    Py_DECREF(layout);
    return failed ? NULL : layout;
}

static int fingerprint_record(PyObject *value, uint64_t *out) {
    PyObject *layout = record_layout(Py_TYPE(value));
    if (layout == NULL) {
        return -1;
    }
    if (layout == Py_None) {
        PyErr_Format(PyExc_TypeError,
                     "%.200s is not a plain immutable value (use int, bool, IntEnum, tuple, frozenset, "
                     "NamedTuple or a frozen dataclass of those)",
                     Py_TYPE(value)->tp_name);
        return -1;
    }
    uint64_t seed = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(layout, 0));
    PyObject *names = PyTuple_GET_ITEM(layout, 1);
    Py_ssize_t size = PyTuple_GET_SIZE(names);
    uint64_t h = mix64(TAG_RECORD ^ seed ^ (uint64_t)size);
    int status = 0;
    for (Py_ssize_t i = 0; i < size && status == 0; i++) {
        PyObject *field = PyObject_GetAttr(value, PyTuple_GET_ITEM(names, i));
        uint64_t item;
        status = field == NULL ? -1 : walk(field, &item);
        Py_XDECREF(field);
        if (status == 0) {
            h = mix64(h ^ item) + K_MIX;
        }
    }
    *out = mix64(h);
    return status;
}

/* Containers walked so far: ``walk`` compares it before and after a walk to tell a container of
 * plain ints (walking it again costs what a memo slot costs) from one holding containers. */
static size_t containers_walked;

static int walk_container(PyObject *value, uint64_t *out) {
    if (Py_EnterRecursiveCall(" while fingerprinting a state")) {
        return -1;
    }
    containers_walked++;
    int status;
    if (PyTuple_Check(value)) { /* NamedTuples too: they compare equal to plain tuples */
        status = fingerprint_tuple(value, out);
    } else if (PyFrozenSet_Check(value)) {
        status = fingerprint_frozenset(value, out);
    } else {
        status = fingerprint_record(value, out);
    }
    Py_LeaveRecursiveCall();
    return status;
}

/* A part of a state: sets and tuples of more than MEMO_MIN_SIZE items go through the memo (a
 * tuple whose fingerprint was computed holds only values the walk accepts, all immutable; its
 * fingerprint reads its items alone), except one of at most FLAT_MAX_SIZE ints only: walking it
 * again costs about what a lookup does, and most such tuples are new in each successor (a
 * tuple of per-node states), so the slots are left to the parts worth keeping, such as a
 * message set shared by every successor of a state. */
#define MEMO_MIN_SIZE 2
#define FLAT_MAX_SIZE 16

/* Whether a tuple holds ints only: one of at most FLAT_MAX_SIZE items is walked without probing
 * the memo, whose slot, a likely cache miss, would not hold it (it is never stored). */
static inline int ints_only(PyObject *tuple) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tuple); i++) {
        if (!PyLong_Check(PyTuple_GET_ITEM(tuple, i))) {
            return 0;
        }
    }
    return 1;
}
static int walk(PyObject *value, uint64_t *out) {
    if (PyLong_Check(value)) { /* int, bool and IntEnum members: == by integer value */
        return fingerprint_int(value, out);
    }
    Py_ssize_t size;
    if (PyFrozenSet_Check(value)) {
        size = PySet_GET_SIZE(value);
    } else if (PyTuple_Check(value)) { /* NamedTuples too */
        size = PyTuple_GET_SIZE(value);
    } else {
        size = 0;
    }
    if (size <= MEMO_MIN_SIZE || (size <= FLAT_MAX_SIZE && PyTuple_Check(value) && ints_only(value))) {
        return walk_container(value, out);
    }
    struct memo_slot *slot = memo_slot_of(value);
    if (slot->value == value) {
        *out = slot->fingerprint;
        return 0;
    }
    size_t before = containers_walked;
    if (walk_container(value, out) < 0) {
        return -1;
    }
    if (containers_walked == before + 1 && size <= FLAT_MAX_SIZE) {
        return 0;
    }
    Py_INCREF(value);
    Py_XSETREF(slot->value, value);
    slot->fingerprint = *out;
    return 0;
}

static int helpers_set(void) {
    if (record_layout_of == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "import model_checker.fingerprint, which sets the helpers");
        return 0;
    }
    return 1;
}

/* A whole state: its root is new (or fingerprinted once), so it skips the memo. */
static inline int walk_root(PyObject *value, uint64_t *out) {
    return PyLong_Check(value) ? fingerprint_int(value, out) : walk_container(value, out);
}

static PyObject *fingerprint(PyObject *module, PyObject *value) {
    uint64_t h;
    if (!helpers_set() || walk_root(value, &h) < 0) {
        return NULL;
    }
    return PyLong_FromLongLong((long long)h);
}

/* Every value of an iterable (about ``count`` of them) into one buffer of native 64-bit words: a
 * search fingerprints its successors a chunk at a time, and this spares each a Python int. */
static PyObject *fingerprints(PyObject *module, PyObject *args) {
    PyObject *values;
    Py_ssize_t capacity;
    if (!PyArg_ParseTuple(args, "On:fingerprints", &values, &capacity) || !helpers_set()) {
        return NULL;
    }
    if (capacity < 0) {
        PyErr_SetString(PyExc_ValueError, "fingerprints: the expected count is negative");
        return NULL;
    }
    PyObject *items = PyObject_GetIter(values);
    if (items == NULL) {
        return NULL;
    }
    PyObject *out = PyByteArray_FromStringAndSize(NULL, capacity * 8);
    Py_ssize_t count = 0;
    PyObject *value;
    while (out != NULL && (value = PyIter_Next(items)) != NULL) {
        if (count == capacity) {
            capacity = capacity * 2 + 64;
            if (PyByteArray_Resize(out, capacity * 8) < 0) {
                Py_DECREF(value);
                Py_CLEAR(out);
                break;
            }
        }
        uint64_t h;
        int status = walk_root(value, &h);
        Py_DECREF(value);
        if (status < 0) {
            Py_CLEAR(out);
            break;
        }
        memcpy(PyByteArray_AS_STRING(out) + count * 8, &h, 8);
        count++;
    }
    Py_DECREF(items);
    if (out != NULL && (PyErr_Occurred() || PyByteArray_Resize(out, count * 8) < 0)) {
        Py_CLEAR(out);
    }
    return out;
}

static PyObject *set_helpers(PyObject *module, PyObject *args) {
    PyObject *layout_of, *int_bytes;
    if (!PyArg_ParseTuple(args, "OO:set_helpers", &layout_of, &int_bytes)) {
        return NULL;
    }
    Py_XSETREF(record_layout_of, Py_NewRef(layout_of));
    Py_XSETREF(big_int_bytes, Py_NewRef(int_bytes));
    PyDict_Clear(record_layouts);
    memo_clear();
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"set_helpers", set_helpers, METH_VARARGS,
     "set_helpers(record_layout, big_int_bytes)\n\nThe Python helpers for dataclasses and ints beyond 64 bits."},
    {"fingerprint", fingerprint, METH_O,
     "fingerprint(value) -> int\n\nThe signed 64-bit fingerprint of a plain immutable value."},
    {"fingerprints", fingerprints, METH_VARARGS,
     "fingerprints(values, count) -> bytearray\n\nThe fingerprints of an iterable's values (about count of "
     "them) as native 64-bit words."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_fingerprint", "64-bit fingerprints of plain immutable values.", -1, methods,
};

PyMODINIT_FUNC PyInit__fingerprint(void) {
    record_layouts = PyDict_New();
    if (record_layouts == NULL) {
        return NULL;
    }
    return PyModule_Create(&module_def);
}
