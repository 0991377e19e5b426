"""Caffe's protobuf messages as one declarative table (both readers are driven by it).

The table below is written in a small line format of this package's own:

    MessageName
      <number> <field_name> <type> [rep] [packed] [array] [default=<value>]
      enum <EnumName> NAME=value NAME=value ...

``type`` is a scalar type (int32 int64 uint32 uint64 bool float double string bytes), a
message name, or an enum name (an enum declared inside the message first, then a
top-level ``enum`` line).  ``rep`` marks a repeated field, ``packed`` a field Caffe writes
packed (every repeated scalar is accepted in both forms), ``array`` a repeated float/double
field that the binary reader returns as a NumPy array (blob payloads).  Field numbers, types
and defaults are those of BVLC Caffe's caffe.proto (last master); see CAFFE_FACTS.md section 1.
A few fields are econv's own (numbers from 1001, unknown to Caffe), which dense nets carry (``econv
densify`` writes them): ``PoolingParameter.est`` and ``pad_end`` (ePool), ``LRNParameter.est``,
``ConvolutionParameter.grid`` (the equivalent deconvolution, layer type ``EDeconvolution``) and
``LayerParameter.mask_param`` (``MaskParameter``: the validity masks of dense FCN blobs, type ``Mask``).

Fork fields (lines after a ``#`` comment naming the fork; ``#`` lines are comments).  Each uses the
fork's own field number from that fork's caffe.proto, except where that number is taken in BVLC's
table (then econv gives it a number from 2001 and the field is text-format only -- a binary
caffemodel carrying it decodes the number as BVLC's field): DenseNet's ``PoolingParameter.ceil_mode``
(BVLC PR #3057 numbered it 13, BVLC's ``round_mode``), DeepLab's ``hole`` (17-19, BVLC's
``force_nd_im2col`` and ``dilation``), SegNet's ``upsample_param`` (137, BVLC's ``embed_param``) and
``dense_image_data_param`` (138, ``tile_param``), PSPNet's ``interp_param`` (143, ``input_param``),
SegNet's ``DropoutParameter.sample_weights_test`` (2, Fast R-CNN's ``scale_train``) and
``LossParameter.weight_by_label_freqs`` / ``class_weighting`` (3 and 4; 3 is BVLC's ``normalization``);
``BNParameter`` merges PSPNet's message (numbers 1-6) and SegNet's (1-3 there, 1001-1003 here).
``FORK_FIELDS`` names the fork of fields econv knows but does not implement, for the parse error.

Public helpers: :func:`message`, :func:`field`, :func:`default`, :func:`enum_value`.
"""

from __future__ import annotations

from dataclasses import dataclass, field as _dc_field

SCALAR_TYPES = ("int32", "int64", "uint32", "uint64", "bool", "float", "double", "string", "bytes")

# Wire type each kind of field is written with when not packed.
WIRE_VARINT, WIRE_FIXED64, WIRE_LEN, WIRE_SGROUP, WIRE_EGROUP, WIRE_FIXED32 = 0, 1, 2, 3, 4, 5

_TABLE = r"""
enum Phase TRAIN=0 TEST=1

BlobShape
  1 dim int64 rep packed

BlobProto
  7 shape BlobShape
  5 data float rep packed array
  6 diff float rep packed array
  8 double_data double rep packed array
  9 double_diff double rep packed array
  1 num int32 default=0
  2 channels int32 default=0
  3 height int32 default=0
  4 width int32 default=0

BlobProtoVector
  1 blobs BlobProto rep

Datum
  1 channels int32
  2 height int32
  3 width int32
  4 data bytes
  5 label int32
  6 float_data float rep
  7 encoded bool default=false

FillerParameter
  enum VarianceNorm FAN_IN=0 FAN_OUT=1 AVERAGE=2
  1 type string default='constant'
  2 value float default=0
  3 min float default=0
  4 max float default=1
  5 mean float default=0
  6 std float default=1
  7 sparse int32 default=-1
  8 variance_norm VarianceNorm default=FAN_IN

NetParameter
  1 name string
  3 input string rep
  8 input_shape BlobShape rep
  4 input_dim int32 rep
  5 force_backward bool default=false
  6 state NetState
  7 debug_info bool default=false
  100 layer LayerParameter rep
  2 layers V1LayerParameter rep

SolverParameter
  enum SnapshotFormat HDF5=0 BINARYPROTO=1
  enum SolverMode CPU=0 GPU=1
  enum SolverType SGD=0 NESTEROV=1 ADAGRAD=2 RMSPROP=3 ADADELTA=4 ADAM=5
  24 net string
  25 net_param NetParameter
  1 train_net string
  2 test_net string rep
  21 train_net_param NetParameter
  22 test_net_param NetParameter rep
  26 train_state NetState
  27 test_state NetState rep
  3 test_iter int32 rep
  4 test_interval int32 default=0
  19 test_compute_loss bool default=false
  32 test_initialization bool default=true
  5 base_lr float
  6 display int32
  33 average_loss int32 default=1
  7 max_iter int32
  36 iter_size int32 default=1
  8 lr_policy string
  9 gamma float
  10 power float
  11 momentum float
  12 weight_decay float
  29 regularization_type string default='L2'
  13 stepsize int32
  34 stepvalue int32 rep
  35 clip_gradients float default=-1
  14 snapshot int32 default=0
  15 snapshot_prefix string
  16 snapshot_diff bool default=false
  37 snapshot_format SnapshotFormat default=BINARYPROTO
  17 solver_mode SolverMode default=GPU
  18 device_id int32 default=0
  20 random_seed int64 default=-1
  40 type string default='SGD'
  31 delta float default=1e-8
  39 momentum2 float default=0.999
  38 rms_decay float default=0.99
  23 debug_info bool default=false
  28 snapshot_after_train bool default=true
  30 solver_type SolverType default=SGD
  41 layer_wise_reduce bool default=true
  42 weights string rep

SolverState
  1 iter int32
  2 learned_net string
  3 history BlobProto rep
  4 current_step int32 default=0

NetState
  1 phase Phase default=TEST
  2 level int32 default=0
  3 stage string rep

NetStateRule
  1 phase Phase
  2 min_level int32
  3 max_level int32
  4 stage string rep
  5 not_stage string rep

ParamSpec
  enum DimCheckMode STRICT=0 PERMISSIVE=1
  1 name string
  2 share_mode DimCheckMode
  3 lr_mult float default=1.0
  4 decay_mult float default=1.0

LayerParameter
  1 name string
  2 type string
  3 bottom string rep
  4 top string rep
  10 phase Phase
  5 loss_weight float rep
  6 param ParamSpec rep
  7 blobs BlobProto rep
  11 propagate_down bool rep
  8 include NetStateRule rep
  9 exclude NetStateRule rep
  100 transform_param TransformationParameter
  101 loss_param LossParameter
  102 accuracy_param AccuracyParameter
  103 argmax_param ArgMaxParameter
  139 batch_norm_param BatchNormParameter
  141 bias_param BiasParameter
  148 clip_param ClipParameter
  104 concat_param ConcatParameter
  105 contrastive_loss_param ContrastiveLossParameter
  106 convolution_param ConvolutionParameter
  144 crop_param CropParameter
  107 data_param DataParameter
  108 dropout_param DropoutParameter
  109 dummy_data_param DummyDataParameter
  110 eltwise_param EltwiseParameter
  140 elu_param ELUParameter
  137 embed_param EmbedParameter
  111 exp_param ExpParameter
  135 flatten_param FlattenParameter
  112 hdf5_data_param HDF5DataParameter
  113 hdf5_output_param HDF5OutputParameter
  114 hinge_loss_param HingeLossParameter
  115 image_data_param ImageDataParameter
  116 infogain_loss_param InfogainLossParameter
  117 inner_product_param InnerProductParameter
  143 input_param InputParameter
  134 log_param LogParameter
  118 lrn_param LRNParameter
  119 memory_data_param MemoryDataParameter
  120 mvn_param MVNParameter
  145 parameter_param ParameterParameter
  121 pooling_param PoolingParameter
  122 power_param PowerParameter
  131 prelu_param PReLUParameter
  130 python_param PythonParameter
  146 recurrent_param RecurrentParameter
  136 reduction_param ReductionParameter
  123 relu_param ReLUParameter
  133 reshape_param ReshapeParameter
  142 scale_param ScaleParameter
  124 sigmoid_param SigmoidParameter
  125 softmax_param SoftmaxParameter
  132 spp_param SPPParameter
  126 slice_param SliceParameter
  147 swish_param SwishParameter
  127 tanh_param TanHParameter
  128 threshold_param ThresholdParameter
  138 tile_param TileParameter
  129 window_data_param WindowDataParameter
  1001 mask_param MaskParameter
  # fork layers: PSPNet (hszhao/PSPNet) and SegNet (alexgkendall/caffe-segnet) BN, SegNet Upsample
  # and DenseImageData, PSPNet / DeepLab Interp, SSD (weiliu89/caffe ssd), Fast(er) R-CNN
  # (rbgirshick/caffe-fast-rcnn)
  152 bn_param BNParameter
  2137 upsample_param UpsampleParameter
  2138 dense_image_data_param DenseImageDataParameter
  2143 interp_param InterpParameter
  206 norm_param NormalizeParameter
  202 permute_param PermuteParameter
  203 prior_box_param PriorBoxParameter
  204 detection_output_param DetectionOutputParameter
  8266711 roi_pooling_param ROIPoolingParameter
  8266712 smooth_l1_loss_param SmoothL1LossParameter

TransformationParameter
  1 scale float default=1
  2 mirror bool default=false
  3 crop_size uint32 default=0
  4 mean_file string
  5 mean_value float rep
  6 force_color bool default=false
  7 force_gray bool default=false

LossParameter
  enum NormalizationMode FULL=0 VALID=1 BATCH_SIZE=2 NONE=3
  1 ignore_label int32
  3 normalization NormalizationMode default=VALID
  2 normalize bool
  # SegNet (caffe-segnet LossParameter 3 and 4, BVLC's normalization and a free number)
  2003 weight_by_label_freqs bool default=false
  2004 class_weighting float rep

AccuracyParameter
  1 top_k uint32 default=1
  2 axis int32 default=1
  3 ignore_label int32

ArgMaxParameter
  1 out_max_val bool default=false
  2 top_k uint32 default=1
  3 axis int32

ClipParameter
  1 min float
  2 max float

ConcatParameter
  2 axis int32 default=1
  1 concat_dim uint32 default=1

BatchNormParameter
  1 use_global_stats bool
  2 moving_average_fraction float default=0.999
  3 eps float default=1e-5

BiasParameter
  1 axis int32 default=1
  2 num_axes int32 default=1
  3 filler FillerParameter

ContrastiveLossParameter
  1 margin float default=1.0
  2 legacy_version bool default=false

ConvolutionParameter
  enum Engine DEFAULT=0 CAFFE=1 CUDNN=2
  1 num_output uint32
  2 bias_term bool default=true
  3 pad uint32 rep
  4 kernel_size uint32 rep
  6 stride uint32 rep
  18 dilation uint32 rep
  9 pad_h uint32 default=0
  10 pad_w uint32 default=0
  11 kernel_h uint32
  12 kernel_w uint32
  13 stride_h uint32
  14 stride_w uint32
  5 group uint32 default=1
  7 weight_filler FillerParameter
  8 bias_filler FillerParameter
  15 engine Engine default=DEFAULT
  16 axis int32 default=1
  17 force_nd_im2col bool default=false
  1001 grid uint32 rep
  # DeepLab (deeplab-public caffe.proto 17-19): the filter's hole = dilation
  2017 hole uint32 default=1
  2018 hole_h uint32 default=1
  2019 hole_w uint32 default=1

CropParameter
  1 axis int32 default=2
  2 offset uint32 rep

DataParameter
  enum DB LEVELDB=0 LMDB=1
  1 source string
  4 batch_size uint32
  7 rand_skip uint32 default=0
  8 backend DB default=LEVELDB
  2 scale float default=1
  3 mean_file string
  5 crop_size uint32 default=0
  6 mirror bool default=false
  9 force_encoded_color bool default=false
  10 prefetch uint32 default=4

DropoutParameter
  1 dropout_ratio float default=0.5
  # Fast R-CNN's (caffe-fast-rcnn: 2) and SegNet's (caffe-segnet: 2, here 2002)
  2 scale_train bool default=true
  2002 sample_weights_test bool default=false

DummyDataParameter
  1 data_filler FillerParameter rep
  6 shape BlobShape rep
  2 num uint32 rep
  3 channels uint32 rep
  4 height uint32 rep
  5 width uint32 rep

EltwiseParameter
  enum EltwiseOp PROD=0 SUM=1 MAX=2
  1 operation EltwiseOp default=SUM
  2 coeff float rep
  3 stable_prod_grad bool default=true

ELUParameter
  1 alpha float default=1

EmbedParameter
  1 num_output uint32
  2 input_dim uint32
  3 bias_term bool default=true
  4 weight_filler FillerParameter
  5 bias_filler FillerParameter

ExpParameter
  1 base float default=-1.0
  2 scale float default=1.0
  3 shift float default=0.0

FlattenParameter
  1 axis int32 default=1
  2 end_axis int32 default=-1

HDF5DataParameter
  1 source string
  2 batch_size uint32
  3 shuffle bool default=false

HDF5OutputParameter
  1 file_name string

HingeLossParameter
  enum Norm L1=1 L2=2
  1 norm Norm default=L1

ImageDataParameter
  1 source string
  4 batch_size uint32 default=1
  7 rand_skip uint32 default=0
  8 shuffle bool default=false
  9 new_height uint32 default=0
  10 new_width uint32 default=0
  11 is_color bool default=true
  2 scale float default=1
  3 mean_file string
  5 crop_size uint32 default=0
  6 mirror bool default=false
  12 root_folder string default=''

InfogainLossParameter
  1 source string
  2 axis int32 default=1

InnerProductParameter
  1 num_output uint32
  2 bias_term bool default=true
  3 weight_filler FillerParameter
  4 bias_filler FillerParameter
  5 axis int32 default=1
  6 transpose bool default=false

InputParameter
  1 shape BlobShape rep

LogParameter
  1 base float default=-1.0
  2 scale float default=1.0
  3 shift float default=0.0

LRNParameter
  enum NormRegion ACROSS_CHANNELS=0 WITHIN_CHANNEL=1
  enum Engine DEFAULT=0 CAFFE=1 CUDNN=2
  1 local_size uint32 default=5
  2 alpha float default=1.0
  3 beta float default=0.75
  4 norm_region NormRegion default=ACROSS_CHANNELS
  5 k float default=1.0
  6 engine Engine default=DEFAULT
  1001 est uint32 rep

MaskParameter
  1 step uint32 rep
  2 valid_h uint32 rep
  3 valid_w uint32 rep
  4 size uint32 rep

MemoryDataParameter
  1 batch_size uint32
  2 channels uint32
  3 height uint32
  4 width uint32

MVNParameter
  1 normalize_variance bool default=true
  2 across_channels bool default=false
  3 eps float default=1e-9

ParameterParameter
  1 shape BlobShape

PoolingParameter
  enum PoolMethod MAX=0 AVE=1 STOCHASTIC=2
  enum Engine DEFAULT=0 CAFFE=1 CUDNN=2
  enum RoundMode CEIL=0 FLOOR=1
  1 pool PoolMethod default=MAX
  4 pad uint32 default=0
  9 pad_h uint32 default=0
  10 pad_w uint32 default=0
  2 kernel_size uint32
  5 kernel_h uint32
  6 kernel_w uint32
  3 stride uint32 default=1
  7 stride_h uint32
  8 stride_w uint32
  11 engine Engine default=DEFAULT
  12 global_pooling bool default=false
  13 round_mode RoundMode default=CEIL
  # BVLC PR #3057 (the DenseNet Caffe models' pooling): ceil_mode = 13 there
  1013 ceil_mode bool default=true
  1001 est uint32 rep
  1002 pad_end uint32 rep

PowerParameter
  1 power float default=1.0
  2 scale float default=1.0
  3 shift float default=0.0

PythonParameter
  1 module string
  2 layer string
  3 param_str string default=''
  4 share_in_parallel bool default=false

RecurrentParameter
  1 num_output uint32 default=0
  2 weight_filler FillerParameter
  3 bias_filler FillerParameter
  4 debug_info bool default=false
  5 expose_hidden bool default=false

ReductionParameter
  enum ReductionOp SUM=1 ASUM=2 SUMSQ=3 MEAN=4
  1 operation ReductionOp default=SUM
  2 axis int32 default=0
  3 coeff float default=1.0

ReLUParameter
  enum Engine DEFAULT=0 CAFFE=1 CUDNN=2
  1 negative_slope float default=0
  2 engine Engine default=DEFAULT

ReshapeParameter
  1 shape BlobShape
  2 axis int32 default=0
  3 num_axes int32 default=-1

ScaleParameter
  1 axis int32 default=1
  2 num_axes int32 default=1
  3 filler FillerParameter
  4 bias_term bool default=false
  5 bias_filler FillerParameter

SigmoidParameter
  enum Engine DEFAULT=0 CAFFE=1 CUDNN=2
  1 engine Engine default=DEFAULT

SliceParameter
  3 axis int32 default=1
  2 slice_point uint32 rep
  1 slice_dim uint32 default=1

SoftmaxParameter
  enum Engine DEFAULT=0 CAFFE=1 CUDNN=2
  1 engine Engine default=DEFAULT
  2 axis int32 default=1

SwishParameter
  1 beta float default=1

TanHParameter
  enum Engine DEFAULT=0 CAFFE=1 CUDNN=2
  1 engine Engine default=DEFAULT

TileParameter
  1 axis int32 default=1
  2 tiles int32

ThresholdParameter
  1 threshold float default=0

WindowDataParameter
  1 source string
  2 scale float default=1
  3 mean_file string
  4 batch_size uint32
  5 crop_size uint32 default=0
  6 mirror bool default=false
  7 fg_threshold float default=0.5
  8 bg_threshold float default=0.5
  9 fg_fraction float default=0.25
  10 context_pad uint32 default=0
  11 crop_mode string default='warp'
  12 cache_images bool default=false
  13 root_folder string default=''

SPPParameter
  enum PoolMethod MAX=0 AVE=1 STOCHASTIC=2
  enum Engine DEFAULT=0 CAFFE=1 CUDNN=2
  1 pyramid_height uint32
  2 pool PoolMethod default=MAX
  6 engine Engine default=DEFAULT

PReLUParameter
  1 filler FillerParameter
  2 channel_shared bool default=false

# ---- fork messages ----
BNParameter
  enum BNMode LEARN=0 INFERENCE=1
  enum Engine DEFAULT=0 CAFFE=1 CUDNN=2
  1 slope_filler FillerParameter
  2 bias_filler FillerParameter
  3 momentum float default=0.9
  4 eps float default=1e-5
  5 frozen bool default=false
  6 engine Engine default=DEFAULT
  1001 scale_filler FillerParameter
  1002 shift_filler FillerParameter
  1003 bn_mode BNMode default=LEARN

UpsampleParameter
  1 scale uint32 default=2
  2 scale_h uint32
  3 scale_w uint32
  4 pad_out_h bool default=false
  5 pad_out_w bool default=false
  6 upsample_h uint32
  7 upsample_w uint32

DenseImageDataParameter
  1 source string
  2 batch_size uint32
  3 rand_skip uint32 default=0
  4 shuffle bool default=false
  5 new_height uint32 default=0
  6 new_width uint32 default=0
  7 is_color bool default=true
  8 mean_file string
  9 root_folder string default=''
  10 mirror bool default=false
  11 crop_width uint32 default=0
  12 crop_height uint32 default=0

InterpParameter
  1 height int32 default=0
  2 width int32 default=0
  3 zoom_factor int32 default=1
  4 shrink_factor int32 default=1
  5 pad_beg int32 default=0
  6 pad_end int32 default=0

NormalizeParameter
  1 across_spatial bool default=true
  2 scale_filler FillerParameter
  3 channel_shared bool default=true
  4 eps float default=1e-10

PermuteParameter
  1 order uint32 rep

PriorBoxParameter
  enum CodeType CORNER=1 CENTER_SIZE=2 CORNER_SIZE=3
  1 min_size float rep
  2 max_size float rep
  3 aspect_ratio float rep
  4 flip bool default=true
  5 clip bool default=false
  6 variance float rep
  7 img_size uint32
  8 img_h uint32
  9 img_w uint32
  10 step float
  11 step_h float
  12 step_w float
  13 offset float default=0.5

NonMaximumSuppressionParameter
  1 nms_threshold float default=0.3
  2 top_k int32
  3 eta float default=1.0

SaveOutputParameter
  1 output_directory string
  2 output_name_prefix string
  3 output_format string
  4 label_map_file string
  5 name_size_file string
  6 num_test_image uint32

DetectionOutputParameter
  enum CodeType CORNER=1 CENTER_SIZE=2 CORNER_SIZE=3
  1 num_classes uint32
  2 share_location bool default=true
  3 background_label_id int32 default=0
  4 nms_param NonMaximumSuppressionParameter
  5 save_output_param SaveOutputParameter
  6 code_type CodeType default=CORNER
  8 variance_encoded_in_target bool default=false
  7 keep_top_k int32 default=-1
  9 confidence_threshold float
  10 visualize bool default=false
  11 visualize_threshold float
  12 save_file string

ROIPoolingParameter
  1 pooled_h uint32 default=0
  2 pooled_w uint32 default=0
  3 spatial_scale float default=1

SmoothL1LossParameter
  1 sigma float default=1

V1LayerParameter
  enum LayerType NONE=0 ABSVAL=35 ACCURACY=1 ARGMAX=30 BNLL=2 CONCAT=3 CONTRASTIVE_LOSS=37 CONVOLUTION=4 DATA=5 DECONVOLUTION=39 DROPOUT=6 DUMMY_DATA=32 EUCLIDEAN_LOSS=7 ELTWISE=25 EXP=38 FLATTEN=8 HDF5_DATA=9 HDF5_OUTPUT=10 HINGE_LOSS=28 IM2COL=11 IMAGE_DATA=12 INFOGAIN_LOSS=13 INNER_PRODUCT=14 LRN=15 MEMORY_DATA=29 MULTINOMIAL_LOGISTIC_LOSS=16 MVN=34 POOLING=17 POWER=26 RELU=18 SIGMOID=19 SIGMOID_CROSS_ENTROPY_LOSS=27 SILENCE=36 SOFTMAX=20 SOFTMAX_LOSS=21 SPLIT=22 SLICE=33 TANH=23 WINDOW_DATA=24 THRESHOLD=31
  enum DimCheckMode STRICT=0 PERMISSIVE=1
  2 bottom string rep
  3 top string rep
  4 name string
  32 include NetStateRule rep
  33 exclude NetStateRule rep
  5 type LayerType
  6 blobs BlobProto rep
  1001 param string rep
  1002 blob_share_mode DimCheckMode rep
  7 blobs_lr float rep
  8 weight_decay float rep
  35 loss_weight float rep
  27 accuracy_param AccuracyParameter
  23 argmax_param ArgMaxParameter
  9 concat_param ConcatParameter
  40 contrastive_loss_param ContrastiveLossParameter
  10 convolution_param ConvolutionParameter
  11 data_param DataParameter
  12 dropout_param DropoutParameter
  26 dummy_data_param DummyDataParameter
  24 eltwise_param EltwiseParameter
  41 exp_param ExpParameter
  13 hdf5_data_param HDF5DataParameter
  14 hdf5_output_param HDF5OutputParameter
  29 hinge_loss_param HingeLossParameter
  15 image_data_param ImageDataParameter
  16 infogain_loss_param InfogainLossParameter
  17 inner_product_param InnerProductParameter
  18 lrn_param LRNParameter
  22 memory_data_param MemoryDataParameter
  34 mvn_param MVNParameter
  19 pooling_param PoolingParameter
  21 power_param PowerParameter
  30 relu_param ReLUParameter
  38 sigmoid_param SigmoidParameter
  39 softmax_param SoftmaxParameter
  31 slice_param SliceParameter
  37 tanh_param TanHParameter
  25 threshold_param ThresholdParameter
  20 window_data_param WindowDataParameter
  36 transform_param TransformationParameter
  42 loss_param LossParameter
  1 layer V0LayerParameter

V0LayerParameter
  enum PoolMethod MAX=0 AVE=1 STOCHASTIC=2
  1 name string
  2 type string
  3 num_output uint32
  4 biasterm bool default=true
  5 weight_filler FillerParameter
  6 bias_filler FillerParameter
  7 pad uint32 default=0
  8 kernelsize uint32
  9 group uint32 default=1
  10 stride uint32 default=1
  11 pool PoolMethod default=MAX
  12 dropout_ratio float default=0.5
  13 local_size uint32 default=5
  14 alpha float default=1.0
  15 beta float default=0.75
  22 k float default=1.0
  16 source string
  17 scale float default=1
  18 meanfile string
  19 batchsize uint32
  20 cropsize uint32 default=0
  21 mirror bool default=false
  50 blobs BlobProto rep
  51 blobs_lr float rep
  52 weight_decay float rep
  53 rand_skip uint32 default=0
  54 det_fg_threshold float default=0.5
  55 det_bg_threshold float default=0.5
  56 det_fg_fraction float default=0.25
  58 det_context_pad uint32 default=0
  59 det_crop_mode string default='warp'
  60 new_num int32 default=0
  61 new_channels int32 default=0
  62 new_height int32 default=0
  63 new_width int32 default=0
  64 shuffle_images bool default=false
  65 concat_dim uint32 default=1
  1001 hdf5_output_param HDF5OutputParameter
"""


@dataclass(frozen=True)
class Enum:
    """A protobuf enum: ``values`` maps NAME -> number, ``names`` number -> NAME."""

    name: str
    values: dict
    names: dict


@dataclass
class Field:
    """One field of a message (see the module docstring for the meaning of each flag)."""

    number: int
    name: str
    type: str                 # a scalar type, "enum" or "message"
    repeated: bool = False
    packed: bool = False
    array: bool = False
    default: object = None    # Python value (enum default as its NAME); None if not given
    enum: Enum | None = None
    message: str | None = None   # the sub-message name for type == "message"

    @property
    def wire_type(self) -> int:
        """The wire type of one unpacked element of this field."""
        if self.type in ("float",):
            return WIRE_FIXED32
        if self.type in ("double",):
            return WIRE_FIXED64
        if self.type in ("string", "bytes", "message"):
            return WIRE_LEN
        return WIRE_VARINT

    @property
    def packable(self) -> bool:
        """True for repeated numeric fields (which may arrive packed or unpacked)."""
        return self.repeated and self.type not in ("string", "bytes", "message")


@dataclass
class Message:
    """A message type: fields by number and by name, in declaration order."""

    name: str
    by_number: dict = _dc_field(default_factory=dict)
    by_name: dict = _dc_field(default_factory=dict)
    enums: dict = _dc_field(default_factory=dict)


def _parse_default(text: str, f: Field):
    if f.type in ("string", "bytes"):
        if len(text) < 2 or text[0] != "'" or text[-1] != "'":
            raise ValueError(f"string default must be quoted: {text}")
        value = text[1:-1]
        return value.encode() if f.type == "bytes" else value
    if f.type == "bool":
        return {"true": True, "false": False}[text]
    if f.type in ("float", "double"):
        return float(text)
    if f.type == "enum":
        if text not in f.enum.values:
            raise ValueError(f"default {text} not in enum {f.enum.name}")
        return text
    return int(text)


def _build(table: str) -> tuple[dict, dict]:
    messages: dict[str, Message] = {}
    global_enums: dict[str, Enum] = {}
    pending: list[tuple[Message, list[str]]] = []
    current: Message | None = None

    def make_enum(tokens):
        values = {}
        for tok in tokens[2:]:
            key, _, num = tok.partition("=")
            values[key] = int(num)
        names = {}
        for key, num in values.items():
            names.setdefault(num, key)
        return Enum(tokens[1], values, names)

    for raw in table.splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        tokens = raw.split()
        indented = raw[0].isspace()
        if not indented:
            if tokens[0] == "enum":
                e = make_enum(tokens)
                global_enums[e.name] = e
                current = None
            else:
                current = Message(tokens[0])
                messages[current.name] = current
            continue
        if tokens[0] == "enum":
            e = make_enum(tokens)
            current.enums[e.name] = e
        else:
            pending.append((current, tokens))

    for msg, tokens in pending:
        number, name, tname = int(tokens[0]), tokens[1], tokens[2]
        f = Field(number, name, tname)
        if tname in SCALAR_TYPES:
            pass
        elif tname in msg.enums or tname in global_enums:
            f.type, f.enum = "enum", msg.enums.get(tname) or global_enums[tname]
        elif tname in messages:
            f.type, f.message = "message", tname
        else:
            raise ValueError(f"{msg.name}.{name}: unknown type {tname}")
        default_text = None
        for flag in tokens[3:]:
            if flag == "rep":
                f.repeated = True
            elif flag == "packed":
                f.packed = True
            elif flag == "array":
                f.array = True
            elif flag.startswith("default="):
                default_text = flag[len("default="):]
            else:
                raise ValueError(f"{msg.name}.{name}: unknown flag {flag}")
        if default_text is not None:
            f.default = _parse_default(default_text, f)
        if number in msg.by_number or name in msg.by_name:
            raise ValueError(f"{msg.name}: duplicate field {number} {name}")
        msg.by_number[number] = f
        msg.by_name[name] = f
    return messages, global_enums


MESSAGES, ENUMS = _build(_TABLE)

SSD = "SSD (github:weiliu89/caffe, branch ssd)"
PSPNET = "PSPNet / DeepLab (github:hszhao/PSPNet)"
# (message, field) -> the fork whose caffe.proto has it; econv does not implement these.
FORK_FIELDS = {
    ("TransformationParameter", "resize_param"): SSD, ("TransformationParameter", "noise_param"): SSD,
    ("TransformationParameter", "distort_param"): SSD, ("TransformationParameter", "expand_param"): SSD,
    ("TransformationParameter", "emit_constraint"): SSD,
    ("LayerParameter", "annotated_data_param"): SSD, ("LayerParameter", "multibox_loss_param"): SSD,
    ("LayerParameter", "detection_evaluate_param"): SSD, ("LayerParameter", "video_data_param"): SSD,
    ("SaveOutputParameter", "resize_param"): SSD,
    ("LayerParameter", "seg_accuracy_param"): PSPNET, ("LayerParameter", "mat_read_param"): PSPNET,
    ("LayerParameter", "mat_write_param"): PSPNET, ("LayerParameter", "dense_crf_param"): PSPNET,
    ("LayerParameter", "domain_transform_param"): PSPNET, ("LayerParameter", "unique_label_param"): PSPNET,
    ("LayerParameter", "bias_channel_param"): PSPNET,
    ("LayerParameter", "adaptive_bias_channel_param"): PSPNET,
}


def fork_note(message_name: str, field_name: str) -> str:
    """`` (a field of <fork>'s caffe.proto; ...)`` for a known fork field, else ``""`` (parse errors)."""
    fork = FORK_FIELDS.get((message_name, field_name))
    return f" (a field of {fork}'s caffe.proto; econv does not implement it)" if fork else ""


def message(name: str) -> Message:
    """The :class:`Message` called ``name`` (KeyError if this table lacks it)."""
    return MESSAGES[name]


def field(message_name: str, field_name: str) -> Field:
    """The :class:`Field` ``field_name`` of message ``message_name`` (KeyError if absent)."""
    return MESSAGES[message_name].by_name[field_name]


def default(message_name: str, field_name: str):
    """Caffe's proto default for a field that is absent from a file.

    Repeated fields default to ``[]``, sub-messages to ``{}`` (a message with every field at
    its default), enums to the NAME of their default (or first-declared, i.e. value-0) value,
    numbers to 0 / 0.0 and strings to ``""`` unless the proto declares another default.
    Fields without a proto default whose absence Caffe treats specially (for example
    ``BatchNormParameter.use_global_stats`` or ``LossParameter.ignore_label``) also return
    the plain proto default here; check presence in the dict first.

    >>> default("LRNParameter", "alpha")
    1.0
    >>> default("PoolingParameter", "pool")
    'MAX'
    """
    f = field(message_name, field_name)
    if f.repeated:
        return []
    if f.default is not None:
        return f.default
    if f.type == "message":
        return {}
    if f.type == "enum":
        return f.enum.names.get(0, next(iter(f.enum.values)))
    if f.type == "bool":
        return False
    if f.type in ("float", "double"):
        return 0.0
    if f.type == "string":
        return ""
    if f.type == "bytes":
        return b""
    return 0


def get(msg: dict, message_name: str, field_name: str):
    """``msg[field_name]`` if present in the dict, else Caffe's default for it."""
    if field_name in msg:
        return msg[field_name]
    return default(message_name, field_name)


def enum_value(message_name: str, field_name: str, name: str) -> int:
    """The number of enum value ``name`` of an enum field (KeyError if unknown)."""
    f = field(message_name, field_name)
    if f.enum is None:
        raise KeyError(f"{message_name}.{field_name} is not an enum field")
    return f.enum.values[name]


INT_RANGES = {
    "int32": (-(1 << 31), (1 << 31) - 1),
    "int64": (-(1 << 63), (1 << 63) - 1),
    "uint32": (0, (1 << 32) - 1),
    "uint64": (0, (1 << 64) - 1),
}
