"""acl.media: DVPP image/video processing. omrt has no DVPP, so every function here answers
ACL_ERROR_API_NOT_SUPPORT (200001) in the shape pyACL returns: `ret`, `(value, ret)`, a 0 handle
for create_* functions, or 0 for getters."""
from __future__ import annotations

from acl._facade import RET as _RET, not_supported as _ns

_PAIR = (0, _RET)

# memory
dvpp_malloc = _ns("media.dvpp_malloc", _PAIR)
dvpp_free = _ns("media.dvpp_free")

# channels
dvpp_create_channel_desc = _ns("media.dvpp_create_channel_desc", 0)
dvpp_destroy_channel_desc = _ns("media.dvpp_destroy_channel_desc")
dvpp_create_channel = _ns("media.dvpp_create_channel")
dvpp_destroy_channel = _ns("media.dvpp_destroy_channel")
dvpp_set_channel_desc_mode = _ns("media.dvpp_set_channel_desc_mode")

# picture descriptions
dvpp_create_pic_desc = _ns("media.dvpp_create_pic_desc", 0)
dvpp_destroy_pic_desc = _ns("media.dvpp_destroy_pic_desc")
for _field in ("data", "size", "format", "width", "height", "width_stride", "height_stride", "ret_code"):
    globals()[f"dvpp_set_pic_desc_{_field}"] = _ns(f"media.dvpp_set_pic_desc_{_field}")
    globals()[f"dvpp_get_pic_desc_{_field}"] = _ns(f"media.dvpp_get_pic_desc_{_field}", 0)
del _field

# JPEG / PNG
dvpp_jpeg_decode_async = _ns("media.dvpp_jpeg_decode_async")
dvpp_jpeg_encode_async = _ns("media.dvpp_jpeg_encode_async")
dvpp_jpeg_predict_dec_size = _ns("media.dvpp_jpeg_predict_dec_size", _PAIR)
dvpp_jpeg_predict_enc_size = _ns("media.dvpp_jpeg_predict_enc_size", _PAIR)
dvpp_jpeg_get_image_info = _ns("media.dvpp_jpeg_get_image_info", (0, 0, 0, _RET))
dvpp_jpeg_get_image_info_v2 = _ns("media.dvpp_jpeg_get_image_info_v2", (0, 0, 0, 0, _RET))
dvpp_png_decode_async = _ns("media.dvpp_png_decode_async")
dvpp_png_get_image_info = _ns("media.dvpp_png_get_image_info", (0, 0, 0, _RET))
dvpp_png_predict_dec_size = _ns("media.dvpp_png_predict_dec_size", _PAIR)
dvpp_create_jpege_config = _ns("media.dvpp_create_jpege_config", 0)
dvpp_set_jpege_config_level = _ns("media.dvpp_set_jpege_config_level")
dvpp_destroy_jpege_config = _ns("media.dvpp_destroy_jpege_config")

# VPC resize / crop / paste
dvpp_vpc_resize_async = _ns("media.dvpp_vpc_resize_async")
dvpp_vpc_crop_async = _ns("media.dvpp_vpc_crop_async")
dvpp_vpc_crop_resize_async = _ns("media.dvpp_vpc_crop_resize_async")
dvpp_vpc_crop_and_paste_async = _ns("media.dvpp_vpc_crop_and_paste_async")
dvpp_vpc_crop_resize_paste_async = _ns("media.dvpp_vpc_crop_resize_paste_async")
dvpp_vpc_batch_crop_async = _ns("media.dvpp_vpc_batch_crop_async")
dvpp_vpc_batch_crop_resize_async = _ns("media.dvpp_vpc_batch_crop_resize_async")
dvpp_vpc_batch_crop_and_paste_async = _ns("media.dvpp_vpc_batch_crop_and_paste_async")
dvpp_vpc_batch_crop_resize_paste_async = _ns("media.dvpp_vpc_batch_crop_resize_paste_async")
dvpp_vpc_convert_color_async = _ns("media.dvpp_vpc_convert_color_async")
dvpp_vpc_pyr_down_async = _ns("media.dvpp_vpc_pyr_down_async")
dvpp_create_roi_config = _ns("media.dvpp_create_roi_config", 0)
dvpp_set_roi_config = _ns("media.dvpp_set_roi_config")
dvpp_destroy_roi_config = _ns("media.dvpp_destroy_roi_config")
dvpp_create_resize_config = _ns("media.dvpp_create_resize_config", 0)
dvpp_set_resize_config_interpolation = _ns("media.dvpp_set_resize_config_interpolation")
dvpp_destroy_resize_config = _ns("media.dvpp_destroy_resize_config")
dvpp_create_batch_pic_desc = _ns("media.dvpp_create_batch_pic_desc", 0)
dvpp_get_pic_desc = _ns("media.dvpp_get_pic_desc", 0)
dvpp_destroy_batch_pic_desc = _ns("media.dvpp_destroy_batch_pic_desc")

# stream descriptions (video)
dvpp_create_stream_desc = _ns("media.dvpp_create_stream_desc", 0)
dvpp_destroy_stream_desc = _ns("media.dvpp_destroy_stream_desc")
for _field in ("data", "size", "format", "timestamp", "ret_code", "eos"):
    globals()[f"dvpp_set_stream_desc_{_field}"] = _ns(f"media.dvpp_set_stream_desc_{_field}")
    globals()[f"dvpp_get_stream_desc_{_field}"] = _ns(f"media.dvpp_get_stream_desc_{_field}", 0)
del _field

# video decode
vdec_create_channel_desc = _ns("media.vdec_create_channel_desc", 0)
vdec_destroy_channel_desc = _ns("media.vdec_destroy_channel_desc")
for _field in ("channel_id", "thread_id", "callback", "en_type", "out_pic_format", "out_pic_width",
               "out_pic_height", "ref_frame_num", "display_frame_num", "out_bit_width", "out_mode"):
    globals()[f"vdec_set_channel_desc_{_field}"] = _ns(f"media.vdec_set_channel_desc_{_field}")
    globals()[f"vdec_get_channel_desc_{_field}"] = _ns(f"media.vdec_get_channel_desc_{_field}", 0)
del _field
vdec_create_channel = _ns("media.vdec_create_channel")
vdec_destroy_channel = _ns("media.vdec_destroy_channel")
vdec_send_frame = _ns("media.vdec_send_frame")
vdec_send_skipped_frame = _ns("media.vdec_send_skipped_frame")
vdec_create_frame_config = _ns("media.vdec_create_frame_config", 0)
vdec_destroy_frame_config = _ns("media.vdec_destroy_frame_config")

# video encode
venc_create_channel_desc = _ns("media.venc_create_channel_desc", 0)
venc_destroy_channel_desc = _ns("media.venc_destroy_channel_desc")
for _field in ("thread_id", "callback", "en_type", "pic_format", "pic_width", "pic_height", "key_frame_interval",
               "buf_addr", "buf_size", "rc_model", "src_rate", "max_bit_rate", "ip_prop"):
    globals()[f"venc_set_channel_desc_{_field}"] = _ns(f"media.venc_set_channel_desc_{_field}")
    globals()[f"venc_get_channel_desc_{_field}"] = _ns(f"media.venc_get_channel_desc_{_field}", 0)
del _field
venc_create_channel = _ns("media.venc_create_channel")
venc_destroy_channel = _ns("media.venc_destroy_channel")
venc_send_frame = _ns("media.venc_send_frame")
venc_create_frame_config = _ns("media.venc_create_frame_config", 0)
venc_set_frame_config_force_i_frame = _ns("media.venc_set_frame_config_force_i_frame")
venc_set_frame_config_eos = _ns("media.venc_set_frame_config_eos")
venc_destroy_frame_config = _ns("media.venc_destroy_frame_config")
