/* Reproducible numerics on the CPU: round float64 values to float32, and gradients to their block
 * grid, each in one pass, finding the values near the tie zone's edge.
 *
 * The same rule as reproducible.py's torch path (which CUDA tensors take), element by element, with
 * d the value's distance to the midpoint between its two float32 neighbours, in units of their gap:
 *   rounded    the even neighbour when d < 2**-zone_bits (the tie zone), else the nearest
 *   logged     values with |d - 2**-zone_bits| < 2**-margin_bits, near the zone's edge
 *   follow     a logged (position, bits) decision is taken when the value is within twice the
 *              margin of the edge and the bits name one of its two float32 neighbours
 * In float32's normal range d comes from the 29 float64 mantissa bits below float32's; elsewhere
 * from float64 differences. Both paths do the same IEEE operations, so they agree bit for bit;
 * Python's tests hold them equal on random and edge-case values.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define DROPPED_BITS ((UINT64_C(1) << 29) - 1)
#define HALF_ULP (INT64_C(1) << 28)
#define MAGNITUDE ((UINT64_C(1) << 63) - 1)
#define FLOAT32_MIN_NORMAL UINT64_C(0x3810000000000000)
#define FLOAT32_BINADES_END UINT64_C(0x47F0000000000000)

typedef struct {
    float nearest;
    float neighbour;
    double distance; /* to the midpoint between nearest and neighbour */
    double gap;
} Geometry;

static Geometry geometry(double exact) {
    Geometry g;
    g.nearest = (float)exact;
    double widened = (double)g.nearest;
    double error = exact - widened;
    g.neighbour = nextafterf(g.nearest, copysignf(INFINITY, (float)error));
    g.gap = fabs((double)g.neighbour - widened);
    g.distance = 0.5 * g.gap - fabs(error);
    return g;
}

static float even(float nearest, float neighbour) {
    uint32_t bits;
    memcpy(&bits, &nearest, sizeof bits);
    return (bits & 1) ? neighbour : nearest;
}

/* Rounds one value by the zone rule; sets *at_edge when the value is near the zone's edge. */
static float round_value(double exact, int zone_bits, int margin_bits, int *at_edge) {
    uint64_t bits;
    memcpy(&bits, &exact, sizeof bits);
    uint64_t magnitude = bits & MAGNITUDE;
    float rounded = (float)exact;
    *at_edge = 0;
    if (magnitude >= FLOAT32_MIN_NORMAL && magnitude < FLOAT32_BINADES_END) {
        int64_t offset = llabs((int64_t)(bits & DROPPED_BITS) - HALF_ULP);
        int64_t zone = INT64_C(1) << (29 - zone_bits);
        *at_edge = llabs(offset - zone) < (INT64_C(1) << (29 - margin_bits));
        if (offset < zone) {
            Geometry g = geometry(exact);
            if (g.distance < g.gap * ldexp(1.0, -zone_bits))
                rounded = even(g.nearest, g.neighbour);
        }
    } else if (magnitude != 0 && magnitude < FLOAT32_MIN_NORMAL) {
        Geometry g = geometry(exact);
        if (g.distance < g.gap * ldexp(1.0, -zone_bits))
            rounded = even(g.nearest, g.neighbour);
        *at_edge = fabs(g.distance - g.gap * ldexp(1.0, -zone_bits)) < g.gap * ldexp(1.0, -margin_bits);
    }
    return rounded;
}

static int append(char **data, Py_ssize_t *used, Py_ssize_t *capacity, const void *item, size_t size) {
    if (*used + (Py_ssize_t)size > *capacity) {
        Py_ssize_t grown = *capacity ? 2 * *capacity : 1024;
        char *moved = PyMem_Realloc(*data, (size_t)grown);
        if (moved == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        *data = moved;
        *capacity = grown;
    }
    memcpy(*data + *used, item, size);
    *used += (Py_ssize_t)size;
    return 0;
}

static PyObject *round_in_place(PyObject *module, PyObject *args) {
    Py_buffer values, follow_positions, follow_bits;
    int zone_bits, margin_bits;
    if (!PyArg_ParseTuple(args, "w*iiy*y*", &values, &zone_bits, &margin_bits, &follow_positions, &follow_bits))
        return NULL;
    PyObject *result = NULL;
    char *positions = NULL, *chosen = NULL;
    Py_ssize_t positions_used = 0, positions_capacity = 0, chosen_used = 0, chosen_capacity = 0;
    Py_ssize_t count = values.len / (Py_ssize_t)sizeof(double);
    Py_ssize_t follows = follow_positions.len / (Py_ssize_t)sizeof(int64_t);
    if (values.len % (Py_ssize_t)sizeof(double) || follow_bits.len != follows * (Py_ssize_t)sizeof(uint32_t) ||
        zone_bits < 2 || margin_bits <= zone_bits || margin_bits > 28) {
        PyErr_SetString(PyExc_ValueError,
                        "round_in_place: float64 values, 2 <= zone_bits < margin_bits <= 28, int64 positions, "
                        "uint32 bits");
        goto done;
    }
    double *data = (double *)values.buf;
    const int64_t *logged_at = (const int64_t *)follow_positions.buf;
    const uint32_t *logged_bits = (const uint32_t *)follow_bits.buf;
    Py_ssize_t next = 0, refused = 0;
    double take_within = ldexp(1.0, 1 - margin_bits);
    while (next < follows && logged_at[next] < 0) {
        next++;
        refused++;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        double exact = data[i];
        int at_edge;
        float rounded = round_value(exact, zone_bits, margin_bits, &at_edge);
        if (at_edge) {
            int64_t at = (int64_t)i;
            uint32_t word;
            memcpy(&word, &rounded, sizeof word);
            if (append(&positions, &positions_used, &positions_capacity, &at, sizeof at) ||
                append(&chosen, &chosen_used, &chosen_capacity, &word, sizeof word))
                goto done;
        }
        while (next < follows && logged_at[next] == (int64_t)i) {
            float logged;
            memcpy(&logged, &logged_bits[next], sizeof logged);
            Geometry g = geometry(exact);
            double off_edge = fabs(g.distance - g.gap * ldexp(1.0, -zone_bits));
            if (off_edge < g.gap * take_within && (logged == g.nearest || logged == g.neighbour))
                rounded = logged;
            else
                refused++;
            next++;
        }
        data[i] = (double)rounded;
    }
    refused += follows - next;
    result = Py_BuildValue("y#y#n", positions ? positions : "", positions_used, chosen ? chosen : "", chosen_used,
                           refused);
done:
    PyMem_Free(positions);
    PyMem_Free(chosen);
    PyBuffer_Release(&values);
    PyBuffer_Release(&follow_positions);
    PyBuffer_Release(&follow_bits);
    return result;
}

/* Block floating-point gradients: reproducible.py's quantize_with_tensor_ops, in one pass after a
 * pass for the largest magnitude. Each value goes to a multiple of 2**(e - gradient_bits), where
 * 2**e bounds the largest magnitude (frexp); within the tie zone around a grid midpoint to the even
 * multiple, elsewhere to the nearest. Directions near the zone's edge are returned (0 down, 1 up),
 * and logged directions there are taken. A vector that is all zeros or holds a NaN or infinity
 * stays as it is, and every logged direction for it is refused. */
static PyObject *quantize_in_place(PyObject *module, PyObject *args) {
    Py_buffer values, follow_positions, follow_directions;
    int gradient_bits, zone_bits, margin_bits;
    if (!PyArg_ParseTuple(args, "w*iiiy*y*", &values, &gradient_bits, &zone_bits, &margin_bits, &follow_positions,
                          &follow_directions))
        return NULL;
    PyObject *result = NULL;
    char *positions = NULL, *ups = NULL;
    Py_ssize_t positions_used = 0, positions_capacity = 0, ups_used = 0, ups_capacity = 0;
    Py_ssize_t count = values.len / (Py_ssize_t)sizeof(double);
    Py_ssize_t follows = follow_positions.len / (Py_ssize_t)sizeof(int64_t);
    if (values.len % (Py_ssize_t)sizeof(double) ||
        follow_directions.len != follows * (Py_ssize_t)sizeof(uint32_t) || zone_bits < 2 ||
        margin_bits <= zone_bits || gradient_bits < 1 || gradient_bits > 52) {
        PyErr_SetString(PyExc_ValueError, "quantize_in_place: float64 values, int64 positions, uint32 directions");
        goto done;
    }
    double *data = (double *)values.buf;
    const int64_t *logged_at = (const int64_t *)follow_positions.buf;
    const uint32_t *logged_up = (const uint32_t *)follow_directions.buf;
    double largest = 0.0;
    int unusable = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (isnan(data[i]))
            unusable = 1;
        else if (fabs(data[i]) > largest)
            largest = fabs(data[i]);
    }
    Py_ssize_t refused = 0;
    if (unusable || largest == 0.0 || !isfinite(largest)) {
        refused = follows;
    } else {
        int exponent;
        frexp(largest, &exponent);
        double spacing = ldexp(1.0, exponent - gradient_bits);
        double zone = ldexp(1.0, -zone_bits), margin = ldexp(1.0, -margin_bits);
        Py_ssize_t next = 0;
        while (next < follows && logged_at[next] < 0) {
            next++;
            refused++;
        }
        for (Py_ssize_t i = 0; i < count; i++) {
            double scaled = data[i] / spacing;
            double floor_ = floor(scaled);
            double above = scaled - floor_ - 0.5;
            uint32_t up = above > 0;
            double distance = fabs(above);
            if (distance < zone)
                up = fabs(fmod(floor_, 2.0)) == 1.0;
            double off_edge = fabs(distance - zone);
            if (off_edge < margin) {
                int64_t at = (int64_t)i;
                if (append(&positions, &positions_used, &positions_capacity, &at, sizeof at) ||
                    append(&ups, &ups_used, &ups_capacity, &up, sizeof up))
                    goto done;
            }
            while (next < follows && logged_at[next] == (int64_t)i) {
                if (off_edge < 2.0 * margin && logged_up[next] <= 1)
                    up = logged_up[next];
                else
                    refused++;
                next++;
            }
            data[i] = (floor_ + (double)up) * spacing;
        }
        refused += follows - next;
    }
    result = Py_BuildValue("y#y#n", positions ? positions : "", positions_used, ups ? ups : "", ups_used, refused);
done:
    PyMem_Free(positions);
    PyMem_Free(ups);
    PyBuffer_Release(&values);
    PyBuffer_Release(&follow_positions);
    PyBuffer_Release(&follow_directions);
    return result;
}

static PyMethodDef methods[] = {
    {"round_in_place", round_in_place, METH_VARARGS,
     "round_in_place(values, zone_bits, margin_bits, follow_positions, follow_bits) -> (positions, bits, refused)"},
    {"quantize_in_place", quantize_in_place, METH_VARARGS,
     "quantize_in_place(values, gradient_bits, zone_bits, margin_bits, follow_positions, follow_directions)"
     " -> (positions, directions, refused)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_rounding", NULL, -1, methods};

PyMODINIT_FUNC PyInit__rounding(void) { return PyModule_Create(&module); }
