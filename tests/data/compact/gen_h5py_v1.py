# Writes h5py_v1.h5: a compact v1 file made by h5py, not moekit (see README.md).
import h5py, numpy as np
with h5py.File("h5py_v1.h5", "w", track_order=False) as f:
    f.attrs["format"] = np.bytes_("moekit")          # fixed-length ASCII string
    f.attrs["version"] = np.int32(1)                 # 32-bit, not moekit's 64-bit
    f.attrs["config"] = '{"hidden_size": 2}'         # variable-length UTF-8
    f.attrs["do_lower_case"] = np.uint8(1)
    f.create_dataset("vocab/tokens", data=np.array([b"[PAD]", b"a", b""], dtype="S5"))
    w = f.create_dataset("weights/w16", data=np.array([[1.5, -2], [0.25, 65504]], dtype=np.float16),
                         compression="gzip", shuffle=True)
    w.attrs["dtype"] = "float16"
    b = f.create_dataset("weights/big_endian", data=np.array([1.0, -0.5, 3.25], dtype=">f4"))
    b.attrs["dtype"] = "float32"
    q = f.create_dataset("weights/q", data=np.array([[-127, 5], [0, 127]], dtype=np.int8))
    q.attrs["dtype"] = "int8"
    q.attrs["scale_dataset"] = "/scales/q"
    f.create_dataset("scales/q", data=np.array([0.5, 0.25], dtype=np.float32))
    f["weights/shared"] = f["weights/w16"]           # hard link
    f.create_dataset("aliases", data=np.array([["shared", "w16"]], dtype=object), dtype=h5py.string_dtype())
