/* Plain values to bytes and back: the codec of the frontier and of the workers' pipes.
 *
 * pickle calls back into Python twice for every NamedTuple (its __getnewargs__ when
 * saving, its generated __new__ when loading): it wrote PBFT's states at 5.8 us a state,
 * the same values as plain tuples at 1.6 us. This codec writes the values the fingerprint walker accepts
 * (ints of at most 64 bits, bools, IntEnum members, tuples and their subclasses without
 * an instance dict, frozensets) with no call into Python, and keeps sharing: a container
 * met again in the same call is written as a reference to its first copy, as pickle's memo
 * does, so siblings that share their parent's sets still share them when read back.
 *
 *   value      := INT zigzag | FALSE | TRUE | INT_OF_CLASS class zigzag
 *               | TUPLE n value*n | TUPLE_OF_CLASS class n value*n | FROZENSET n value*n
 *               | SEEN index
 *   encoding   := count value*count
 *
 * Numbers are LEB128 varints; ``class`` indexes the class list returned beside the bytes;
 * ``index`` counts containers in the order their encoding ends. Anything else raises
 * TypeError, and the caller falls back to pickle for that batch.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

enum { INT, FALSE_, TRUE_, INT_OF_CLASS, TUPLE, TUPLE_OF_CLASS, FROZENSET, SEEN };

static PyObject *enum_type; /* enum.Enum: the only int subclasses accepted are its members */

/* ------------------------------------------------------------------------------ encoding */

typedef struct {
    PyObject **keys;
    uint32_t *values;
    size_t mask, count;
} Seen;

static inline size_t slot_of(const Seen *seen, PyObject *key) {
    uintptr_t address = (uintptr_t)key;
    return (size_t)((address >> 4) * 0x9E3779B97F4A7C15ULL >> 20) & seen->mask;
}

static int seen_init(Seen *seen, size_t slots) {
    seen->mask = slots - 1;
    seen->count = 0;
    seen->keys = PyMem_Calloc(slots, sizeof(PyObject *));
    seen->values = PyMem_Malloc(slots * sizeof(uint32_t));
    if (seen->keys == NULL || seen->values == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static void seen_free(Seen *seen) {
    PyMem_Free(seen->keys);
    PyMem_Free(seen->values);
}

static int64_t seen_find(const Seen *seen, PyObject *key) {
    for (size_t i = slot_of(seen, key);; i = (i + 1) & seen->mask) {
        if (seen->keys[i] == key) {
            return seen->values[i];
        }
        if (seen->keys[i] == NULL) {
            return -1;
        }
    }
}

static void seen_put(Seen *seen, PyObject *key, uint32_t value) {
    size_t i = slot_of(seen, key);
    while (seen->keys[i] != NULL) {
        i = (i + 1) & seen->mask;
    }
    seen->keys[i] = key;
    seen->values[i] = value;
    seen->count++;
}

static int seen_add(Seen *seen, PyObject *key, uint32_t value) {
    if (2 * (seen->count + 1) > seen->mask + 1) {
        Seen larger;
        if (seen_init(&larger, 2 * (seen->mask + 1)) < 0) {
            seen_free(&larger);
            return -1;
        }
        for (size_t i = 0; i <= seen->mask; i++) {
            if (seen->keys[i] != NULL) {
                seen_put(&larger, seen->keys[i], seen->values[i]);
            }
        }
        seen_free(seen);
        *seen = larger;
    }
    seen_put(seen, key, value);
    return 0;
}

typedef struct {
    char *data;
    size_t size, capacity;
    Seen seen;
    uint32_t containers;
    PyObject *classes; /* list */
} Encoder;

static int reserve(Encoder *e, size_t more) {
    if (e->size + more <= e->capacity) {
        return 0;
    }
    size_t capacity = 2 * e->capacity + more;
    char *data = PyMem_Realloc(e->data, capacity);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    e->data = data;
    e->capacity = capacity;
    return 0;
}

static inline int put_varint(Encoder *e, uint64_t value) {
    if (reserve(e, 10) < 0) {
        return -1;
    }
    while (value >= 0x80) {
        e->data[e->size++] = (char)(value | 0x80);
        value >>= 7;
    }
    e->data[e->size++] = (char)value;
    return 0;
}

static inline int put_tag(Encoder *e, int tag, uint64_t value) {
    if (reserve(e, 1) < 0) {
        return -1;
    }
    e->data[e->size++] = (char)tag;
    return put_varint(e, value);
}

static inline uint64_t zigzag(int64_t value) {
    return ((uint64_t)value << 1) ^ (uint64_t)(value >> 63);
}

static int int64_of(PyObject *value, int64_t *out) {
    int overflow = 0;
    long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow) {
        PyErr_SetString(PyExc_TypeError, "an int beyond 64 bits");
        return -1;
    }
    if (number == -1 && PyErr_Occurred()) {
        return -1;
    }
    *out = number;
    return 0;
}

/* The index of ``type`` in the encoding's class list, added if new: a tuple subclass without an
 * instance dict, or an enum of ints, whose members are read back by calling the class. */
static Py_ssize_t class_index(Encoder *e, PyTypeObject *type) {
    Py_ssize_t size = PyList_GET_SIZE(e->classes);
    for (Py_ssize_t i = 0; i < size; i++) {
        if (PyList_GET_ITEM(e->classes, i) == (PyObject *)type) {
            return i;
        }
    }
    int plain = PyType_IsSubtype(type, &PyTuple_Type) ? type->tp_dictoffset == 0
                                                      : PyType_IsSubtype(type, (PyTypeObject *)enum_type);
    if (!plain) {
        PyErr_Format(PyExc_TypeError, "%.200s is not a plain value", type->tp_name);
        return -1;
    }
    return PyList_Append(e->classes, (PyObject *)type) < 0 ? -1 : size;
}

static int encode_value(Encoder *e, PyObject *value);

static int encode_items(Encoder *e, PyObject *value) {
    if (PyTuple_Check(value)) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(value); i++) {
            if (encode_value(e, PyTuple_GET_ITEM(value, i)) < 0) {
                return -1;
            }
        }
        return 0;
    }
    PyObject *items = PyObject_GetIter(value);
    if (items == NULL) {
        return -1;
    }
    PyObject *item;
    int status = 0;
    while (status == 0 && (item = PyIter_Next(items)) != NULL) {
        status = encode_value(e, item);
        Py_DECREF(item);
    }
    Py_DECREF(items);
    return status < 0 || PyErr_Occurred() ? -1 : 0;
}

static int encode_container(Encoder *e, PyObject *value) {
    int64_t first = seen_find(&e->seen, value);
    if (first >= 0) {
        return put_tag(e, SEEN, (uint64_t)first);
    }
    PyTypeObject *type = Py_TYPE(value);
    int status;
    if (PyTuple_CheckExact(value)) {
        status = put_tag(e, TUPLE, (uint64_t)PyTuple_GET_SIZE(value));
    } else if (PyFrozenSet_CheckExact(value)) {
        status = put_tag(e, FROZENSET, (uint64_t)PySet_GET_SIZE(value));
    } else if (PyTuple_Check(value)) {
        Py_ssize_t index = class_index(e, type);
        status = index < 0 ? -1 : put_tag(e, TUPLE_OF_CLASS, (uint64_t)index);
        status = status < 0 ? -1 : put_varint(e, (uint64_t)PyTuple_GET_SIZE(value));
    } else {
        PyErr_Format(PyExc_TypeError, "%.200s is not a plain value", type->tp_name);
        return -1;
    }
    if (status < 0 || Py_EnterRecursiveCall(" while encoding states")) {
        return -1;
    }
    status = encode_items(e, value);
    Py_LeaveRecursiveCall();
    if (status < 0) {
        return -1;
    }
    return seen_add(&e->seen, value, e->containers++);
}

static int encode_value(Encoder *e, PyObject *value) {
    int64_t number;
    if (PyLong_CheckExact(value)) {
        return int64_of(value, &number) < 0 ? -1 : put_tag(e, INT, zigzag(number));
    }
    if (PyBool_Check(value)) {
        if (reserve(e, 1) < 0) {
            return -1;
        }
        e->data[e->size++] = (char)(value == Py_True ? TRUE_ : FALSE_);
        return 0;
    }
    if (PyLong_Check(value)) {
        Py_ssize_t index = class_index(e, Py_TYPE(value));
        if (index < 0 || int64_of(value, &number) < 0 || put_tag(e, INT_OF_CLASS, (uint64_t)index) < 0) {
            return -1;
        }
        return put_varint(e, zigzag(number));
    }
    return encode_container(e, value);
}

static PyObject *encode(PyObject *module, PyObject *values) {
    if (!PyList_Check(values)) {
        PyErr_SetString(PyExc_TypeError, "encode takes a list");
        return NULL;
    }
    Encoder e = {NULL, 0, 0, {NULL, NULL, 0, 0}, 0, PyList_New(0)};
    PyObject *result = NULL;
    if (e.classes == NULL || seen_init(&e.seen, 1024) < 0 || put_varint(&e, (uint64_t)PyList_GET_SIZE(values)) < 0) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(values); i++) {
        if (encode_value(&e, PyList_GET_ITEM(values, i)) < 0) {
            goto done;
        }
    }
    PyObject *classes = PyList_AsTuple(e.classes);
    if (classes != NULL) {
        result = Py_BuildValue("(y#N)", e.data, (Py_ssize_t)e.size, classes);
    }
done:
    PyMem_Free(e.data);
    seen_free(&e.seen);
    Py_XDECREF(e.classes);
    return result;
}

/* ------------------------------------------------------------------------------ decoding */

typedef struct {
    const unsigned char *at, *end;
    PyObject **containers; /* held here too: corrupt bytes may make a set drop an equal duplicate */
    size_t count, capacity;
    PyObject *classes;     /* tuple */
    PyObject **small;      /* per class, its members of value 0 to SMALL_MEMBERS - 1, as met */
    PyObject *members;     /* dict: (class index, value) -> member, for the other values */
} Decoder;

#define SMALL_MEMBERS 64

static PyObject *corrupt(void) {
    PyErr_SetString(PyExc_ValueError, "corrupt state encoding");
    return NULL;
}

static int get_varint(Decoder *d, uint64_t *out) {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (d->at == d->end) {
            corrupt();
            return -1;
        }
        unsigned char byte = *d->at++;
        value |= (uint64_t)(byte & 0x7F) << shift;
        if (byte < 0x80) {
            *out = value;
            return 0;
        }
    }
    corrupt();
    return -1;
}

static inline int64_t unzigzag(uint64_t value) {
    return (int64_t)(value >> 1) ^ -(int64_t)(value & 1);
}

/* A count of items that the remaining bytes can hold (each item takes at least one). */
static int get_size(Decoder *d, Py_ssize_t *out) {
    uint64_t size;
    if (get_varint(d, &size) < 0) {
        return -1;
    }
    if (size > (uint64_t)(d->end - d->at)) {
        corrupt();
        return -1;
    }
    *out = (Py_ssize_t)size;
    return 0;
}

static PyTypeObject *class_at(Decoder *d, uint64_t index) {
    if (index >= (uint64_t)PyTuple_GET_SIZE(d->classes) || !PyType_Check(PyTuple_GET_ITEM(d->classes, index))) {
        corrupt();
        return NULL;
    }
    return (PyTypeObject *)PyTuple_GET_ITEM(d->classes, index);
}

static PyObject *decode_value(Decoder *d);

static PyObject *remember(Decoder *d, PyObject *container) {
    if (container == NULL) {
        return NULL;
    }
    if (d->count == d->capacity) {
        size_t capacity = 2 * d->capacity + 256;
        PyObject **grown = PyMem_Realloc(d->containers, capacity * sizeof(PyObject *));
        if (grown == NULL) {
            Py_DECREF(container);
            return PyErr_NoMemory();
        }
        d->containers = grown;
        d->capacity = capacity;
    }
    d->containers[d->count++] = Py_NewRef(container);
    return container;
}

/* ``size`` items into a new tuple of ``type`` (a tuple subclass laid out as a tuple). */
static PyObject *decode_tuple(Decoder *d, PyTypeObject *type, Py_ssize_t size) {
    PyObject *tuple = type == &PyTuple_Type ? PyTuple_New(size) : type->tp_alloc(type, size);
    if (tuple == NULL || Py_EnterRecursiveCall(" while decoding states")) {
        Py_XDECREF(tuple);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < size; i++) {
        PyObject *item = decode_value(d);
        if (item == NULL) {
            Py_LeaveRecursiveCall();
            Py_DECREF(tuple);
            return NULL;
        }
        PyTuple_SET_ITEM(tuple, i, item);
    }
    Py_LeaveRecursiveCall();
    return tuple;
}

static PyObject *decode_member(Decoder *d) {
    uint64_t index, value;
    if (get_varint(d, &index) < 0 || get_varint(d, &value) < 0) {
        return NULL;
    }
    PyTypeObject *type = class_at(d, index);
    if (type == NULL) {
        return NULL;
    }
    if (!PyType_IsSubtype(type, (PyTypeObject *)enum_type)) {
        return corrupt();
    }
    if (value < 2 * SMALL_MEMBERS && value % 2 == 0) {
        PyObject **slot = &d->small[index * SMALL_MEMBERS + value / 2];
        if (*slot == NULL) {
            PyObject *number = PyLong_FromUnsignedLongLong(value / 2);
            *slot = number == NULL ? NULL : PyObject_CallOneArg((PyObject *)type, number);
            Py_XDECREF(number);
        }
        return Py_XNewRef(*slot);
    }
    PyObject *key = Py_BuildValue("(KL)", (unsigned long long)index, (long long)unzigzag(value));
    if (key == NULL) {
        return NULL;
    }
    PyObject *member = PyDict_GetItemWithError(d->members, key);
    if (member != NULL || PyErr_Occurred()) {
        Py_DECREF(key);
        return Py_XNewRef(member);
    }
    member = PyObject_CallOneArg((PyObject *)type, PyTuple_GET_ITEM(key, 1));
    if (member != NULL && PyDict_SetItem(d->members, key, member) < 0) {
        Py_CLEAR(member);
    }
    Py_DECREF(key);
    return member;
}

static PyObject *decode_value(Decoder *d) {
    if (d->at == d->end) {
        return corrupt();
    }
    int tag = *d->at++;
    uint64_t number;
    Py_ssize_t size;
    switch (tag) {
    case INT:
        return get_varint(d, &number) < 0 ? NULL : PyLong_FromLongLong(unzigzag(number));
    case FALSE_:
        Py_RETURN_FALSE;
    case TRUE_:
        Py_RETURN_TRUE;
    case INT_OF_CLASS:
        return decode_member(d);
    case TUPLE:
        return get_size(d, &size) < 0 ? NULL : remember(d, decode_tuple(d, &PyTuple_Type, size));
    case TUPLE_OF_CLASS: {
        if (get_varint(d, &number) < 0) {
            return NULL;
        }
        PyTypeObject *type = class_at(d, number);
        if (type == NULL || get_size(d, &size) < 0) {
            return NULL;
        }
        if (!PyType_IsSubtype(type, &PyTuple_Type) || type->tp_dictoffset != 0) {
            return corrupt();
        }
        return remember(d, decode_tuple(d, type, size));
    }
    case FROZENSET: {
        if (get_size(d, &size) < 0) {
            return NULL;
        }
        PyObject *items = decode_tuple(d, &PyTuple_Type, size);
        PyObject *set = items == NULL ? NULL : PyFrozenSet_New(items);
        Py_XDECREF(items);
        return remember(d, set);
    }
    case SEEN:
        if (get_varint(d, &number) < 0) {
            return NULL;
        }
        return number < d->count ? Py_NewRef(d->containers[number]) : corrupt();
    default:
        return corrupt();
    }
}

static PyObject *decode(PyObject *module, PyObject *args) {
    Py_buffer data;
    PyObject *classes;
    if (!PyArg_ParseTuple(args, "y*O!:decode", &data, &PyTuple_Type, &classes)) {
        return NULL;
    }
    Py_ssize_t slots = PyTuple_GET_SIZE(classes) * SMALL_MEMBERS;
    Decoder d = {data.buf, (const unsigned char *)data.buf + data.len, NULL, 0, 0, classes,
                 PyMem_Calloc(slots ? slots : 1, sizeof(PyObject *)), PyDict_New()};
    PyObject *result = NULL;
    Py_ssize_t count;
    if (d.small == NULL) {
        PyErr_NoMemory();
    } else if (d.members != NULL && get_size(&d, &count) == 0 && (result = PyList_New(count)) != NULL) {
        for (Py_ssize_t i = 0; i < count; i++) {
            PyObject *value = decode_value(&d);
            if (value == NULL) {
                Py_CLEAR(result);
                break;
            }
            PyList_SET_ITEM(result, i, value);
        }
    }
    if (result != NULL && d.at != d.end) {
        Py_CLEAR(result);
        corrupt();
    }
    for (size_t i = 0; i < d.count; i++) {
        Py_DECREF(d.containers[i]);
    }
    PyMem_Free(d.containers);
    for (Py_ssize_t i = 0; d.small != NULL && i < slots; i++) {
        Py_XDECREF(d.small[i]);
    }
    PyMem_Free(d.small);
    Py_XDECREF(d.members);
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef methods[] = {
    {"encode", encode, METH_O,
     "encode(values) -> (bytes, classes)\n\nA list of plain values as bytes, and the classes they name."},
    {"decode", decode, METH_VARARGS,
     "decode(data, classes) -> list\n\nThe values that encode wrote as data, naming classes."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_codec", "Plain values to bytes and back, keeping shared parts shared.", -1, methods,
};

PyMODINIT_FUNC PyInit__codec(void) {
    PyObject *enum_module = PyImport_ImportModule("enum");
    if (enum_module == NULL) {
        return NULL;
    }
    enum_type = PyObject_GetAttrString(enum_module, "Enum");
    Py_DECREF(enum_module);
    if (enum_type == NULL) {
        return NULL;
    }
    return PyModule_Create(&module_def);
}
