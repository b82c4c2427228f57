/* The visited table's fingerprint set: open addressing with linear probing over numpy arrays.
 *
 * A sorted index answers membership with a binary search: at tens of millions of states each
 * lookup costs a dozen cache misses, and the search spent a third of its master's time there.
 * Here a lookup costs about one. The arrays belong to the caller (model_checker.visited), so
 * they pickle with the table and grow there; this module only probes, inserts and rehashes.
 *
 *   keys   int64[capacity + 1]: 0 marks an empty slot; the fingerprint 0 itself is kept in the
 *          last element (1 when present), since it cannot mark itself
 *   ids    int32[capacity + 1] or None: each slot's state id, when the caller asks for ids
 *
 * A fingerprint's home slot is its high bits scaled to the capacity (fingerprints are already
 * mixed, so any capacity works); collisions probe forward, wrapping around.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

typedef struct {
    Py_buffer view;
    int held;
} buffer_t;

static int get_buffer(PyObject *object, buffer_t *out, Py_ssize_t itemsize, int writable, const char *name) {
    out->held = 0;
    if (object == Py_None) {
        return 0;
    }
    int flags = PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(object, &out->view, flags) < 0) {
        return -1;
    }
    out->held = 1;
    if (out->view.itemsize != itemsize || out->view.len % itemsize != 0) {
        PyErr_Format(PyExc_TypeError, "%s must hold %zd-byte integers", name, itemsize);
        return -1;
    }
    return 0;
}

static void release(buffer_t *buffer) {
    if (buffer->held) {
        PyBuffer_Release(&buffer->view);
        buffer->held = 0;
    }
}

static inline size_t home(uint64_t fingerprint, size_t capacity) {
    return (size_t)(((unsigned __int128)fingerprint * capacity) >> 64);
}

/* The slot holding ``fingerprint`` (non-zero), or the empty slot where it would go. */
static inline size_t probe(const int64_t *keys, size_t capacity, int64_t fingerprint) {
    size_t slot = home((uint64_t)fingerprint, capacity);
    while (keys[slot] != 0 && keys[slot] != fingerprint) {
        slot = slot + 1 == capacity ? 0 : slot + 1;
    }
    return slot;
}

/* insert_new(keys, ids, fps, first_id, limit, new_positions, successor_ids) -> (inserted, dropped)
 *
 * Walks ``fps`` in order: a fingerprint not yet in the set is inserted with the next id, from
 * ``first_id``, while fewer than ``limit`` were inserted, and its position is written to
 * ``new_positions``; so later copies in the same batch are found, and the inserted ones are
 * the first occurrences in order. ``successor_ids`` (or None) gets each fingerprint's id, -1
 * for one left out by the limit. ``dropped`` says whether any was left out. The caller keeps
 * the load low enough for ``len(fps)`` insertions. */
static PyObject *insert_new(PyObject *module, PyObject *args) {
    PyObject *keys_obj, *ids_obj, *fps_obj, *positions_obj, *successor_ids_obj;
    long long first_id;
    Py_ssize_t limit;
    if (!PyArg_ParseTuple(args, "OOOLnOO:insert_new", &keys_obj, &ids_obj, &fps_obj, &first_id, &limit,
                          &positions_obj, &successor_ids_obj)) {
        return NULL;
    }
    buffer_t keys, ids, fps, positions, successor_ids;
    PyObject *result = NULL;
    ids.held = fps.held = positions.held = successor_ids.held = 0;
    if (get_buffer(keys_obj, &keys, 8, 1, "keys") < 0 || get_buffer(ids_obj, &ids, 4, 1, "ids") < 0 ||
        get_buffer(fps_obj, &fps, 8, 0, "fps") < 0 || get_buffer(positions_obj, &positions, 8, 1, "new_positions") < 0 ||
        get_buffer(successor_ids_obj, &successor_ids, 4, 1, "successor_ids") < 0) {
        goto done;
    }
    Py_ssize_t slots = keys.view.len / 8, count = fps.view.len / 8;
    if (slots < 2 || (ids.held && ids.view.len / 4 != slots) || positions.view.len / 8 < count ||
        (successor_ids.held && successor_ids.view.len / 4 < count)) {
        PyErr_SetString(PyExc_ValueError, "insert_new: array sizes do not match");
        goto done;
    }
    int64_t *key = keys.view.buf;
    int32_t *id = ids.held ? ids.view.buf : NULL;
    const int64_t *fp = fps.view.buf;
    int64_t *position = positions.view.buf;
    int32_t *successor_id = successor_ids.held ? successor_ids.view.buf : NULL;
    size_t capacity = (size_t)slots - 1;
    Py_ssize_t inserted = 0;
    int dropped = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        size_t slot = fp[i] == 0 ? capacity : probe(key, capacity, fp[i]);
        int present = fp[i] == 0 ? key[capacity] != 0 : key[slot] != 0;
        int32_t found = -1;
        if (present) {
            found = id ? id[slot] : 0;
        } else if (inserted < limit) {
            found = (int32_t)(first_id + inserted);
            key[slot] = fp[i] == 0 ? 1 : fp[i];
            if (id) {
                id[slot] = found;
            }
            position[inserted++] = i;
        } else {
            dropped = 1;
        }
        if (successor_id) {
            successor_id[i] = found;
        }
    }
    result = Py_BuildValue("nO", inserted, dropped ? Py_True : Py_False);
done:
    release(&keys);
    release(&ids);
    release(&fps);
    release(&positions);
    release(&successor_ids);
    return result;
}

/* rehash(keys, ids, new_keys, new_ids): every fingerprint of the first set (and its id) into the
 * second, empty one. */
static PyObject *rehash(PyObject *module, PyObject *args) {
    PyObject *keys_obj, *ids_obj, *new_keys_obj, *new_ids_obj;
    if (!PyArg_ParseTuple(args, "OOOO:rehash", &keys_obj, &ids_obj, &new_keys_obj, &new_ids_obj)) {
        return NULL;
    }
    buffer_t keys, ids, new_keys, new_ids;
    PyObject *result = NULL;
    ids.held = new_keys.held = new_ids.held = 0;
    if (get_buffer(keys_obj, &keys, 8, 0, "keys") < 0 || get_buffer(ids_obj, &ids, 4, 0, "ids") < 0 ||
        get_buffer(new_keys_obj, &new_keys, 8, 1, "new_keys") < 0 ||
        get_buffer(new_ids_obj, &new_ids, 4, 1, "new_ids") < 0) {
        goto done;
    }
    Py_ssize_t slots = keys.view.len / 8, new_slots = new_keys.view.len / 8;
    if (slots < 2 || new_slots < 2 || ids.held != new_ids.held || (ids.held && ids.view.len / 4 != slots) ||
        (new_ids.held && new_ids.view.len / 4 != new_slots)) {
        PyErr_SetString(PyExc_ValueError, "rehash: array sizes do not match");
        goto done;
    }
    const int64_t *key = keys.view.buf;
    const int32_t *id = ids.held ? ids.view.buf : NULL;
    int64_t *new_key = new_keys.view.buf;
    int32_t *new_id = new_ids.held ? new_ids.view.buf : NULL;
    size_t capacity = (size_t)slots - 1, new_capacity = (size_t)new_slots - 1;
    for (size_t slot = 0; slot <= capacity; slot++) {
        if (key[slot] == 0) {
            continue;
        }
        size_t target = slot == capacity ? new_capacity : probe(new_key, new_capacity, key[slot]);
        new_key[target] = key[slot];
        if (new_id) {
            new_id[target] = id[slot];
        }
    }
    result = Py_NewRef(Py_None);
done:
    release(&keys);
    release(&ids);
    release(&new_keys);
    release(&new_ids);
    return result;
}

static PyMethodDef methods[] = {
    {"insert_new", insert_new, METH_VARARGS,
     "insert_new(keys, ids, fps, first_id, limit, new_positions, successor_ids) -> (inserted, dropped)\n\n"
     "Insert the fingerprints not yet in the set, in order, up to limit of them."},
    {"rehash", rehash, METH_VARARGS, "rehash(keys, ids, new_keys, new_ids)\n\nCopy a set into a larger, empty one."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_visited", "The visited table's open-addressing fingerprint set.", -1, methods,
};

PyMODINIT_FUNC PyInit__visited(void) { return PyModule_Create(&module_def); }
