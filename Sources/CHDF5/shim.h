#ifndef BLCONVERT_CHDF5_SHIM_H
#define BLCONVERT_CHDF5_SHIM_H
#include <hdf5.h>

/* Macros such as H5T_NATIVE_FLOAT expand to globals behind H5open(); Swift cannot see them. */
static inline hid_t blc_h5t_native_float(void)  { return H5T_NATIVE_FLOAT; }
static inline hid_t blc_h5t_native_double(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t blc_h5t_native_int8(void)   { return H5T_NATIVE_INT8; }
static inline hid_t blc_h5t_native_uint8(void)  { return H5T_NATIVE_UINT8; }
static inline hid_t blc_h5t_native_int16(void)  { return H5T_NATIVE_INT16; }
static inline hid_t blc_h5t_native_uint16(void) { return H5T_NATIVE_UINT16; }
static inline hid_t blc_h5t_native_int32(void)  { return H5T_NATIVE_INT32; }
static inline hid_t blc_h5t_native_uint32(void) { return H5T_NATIVE_UINT32; }
static inline hid_t blc_h5t_native_int64(void)  { return H5T_NATIVE_INT64; }
static inline hid_t blc_h5t_native_uint64(void) { return H5T_NATIVE_UINT64; }
static inline hid_t blc_h5t_native_hbool(void)  { return H5T_NATIVE_HBOOL; }
static inline hid_t blc_h5p_default(void)       { return H5P_DEFAULT; }
static inline unsigned blc_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline hid_t blc_h5e_default(void)       { return H5E_DEFAULT; }
static inline hid_t blc_h5s_all(void)           { return H5S_ALL; }
static inline hid_t blc_h5t_c_s1(void)          { return H5T_C_S1; }
static inline size_t blc_h5t_variable(void)     { return H5T_VARIABLE; }
static inline unsigned blc_h5f_acc_trunc(void)  { return H5F_ACC_TRUNC; }
static inline hid_t blc_h5p_file_create(void)   { return H5P_FILE_CREATE; }
static inline hid_t blc_h5p_dataset_create(void) { return H5P_DATASET_CREATE; }
static inline unsigned blc_h5o_info_basic_attrs(void) { return H5O_INFO_BASIC | H5O_INFO_NUM_ATTRS; }


#endif
