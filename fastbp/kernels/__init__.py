"""CPU kernels: the equations of backpropagation, each a compiled Numba function.

Notation follows Nielsen, *Neural Networks and Deep Learning*, chapter 2. Layer ``l`` has
weights ``w`` of shape ``(n_out, n_in)`` and biases ``b`` of shape ``(n_out,)``. A mini-batch
is held as rows: ``a[k]`` is the activation of sample ``k``. Kernels that read the network's
input take the data matrix ``x`` and ``rows``, the indices of the mini-batch's samples in it,
so a shuffled epoch never copies the data.

All parameters live in one flat buffer ``params``; layer ``l`` (1-based, ``l = 1 .. L-1``)
occupies ``params[offsets[l - 1]:offsets[l]]``: its weights row by row, then its biases.
Gradients use the same layout, so an update is one operation over the whole buffer.

The passes over all layers take ``model``, a ``views.Model`` (the layer widths, the offsets
above, each layer's activation, residual connection and batch normalisation, the cost), and
``ws``, a ``views.Workspace`` of preallocated buffers; the optimisers take their
hyper-parameters as an ``optimizers.Hyper``: named tuples, which Numba compiles to plain
values.

Kernels never validate: the ``Network`` class checks shapes, dtypes and values first, and
passes C-contiguous arrays of one floating dtype and scalars of that same dtype. They compute
with subnormal numbers flushed to zero (``_fpmode``): the caller sets that mode on its thread,
and each iteration of a parallel loop on its own.

The kernels live in modules by concern: ``codes`` (activation, cost and optimiser codes),
``views`` (views of the flat buffers, work buffers), ``activations``, ``weighted_input``
(``z = w a + b``), ``columns`` (layer 1 from ``wᵀ``), ``regularisation`` (dropout, penalties,
clipping), ``batch_norm``, ``forward``, ``backward`` (BP1–BP4), ``optimizers``, ``epochs``
(whole epochs in one call), ``team`` (an epoch on a team of threads), ``recurrent`` (RNN,
LSTM and GRU cells, BPTT, a recurrent epoch) and ``perceptron``. This
package re-exports them all. Numba's cache is kept correct across them by
``fastbp._cache``: editing any of these modules invalidates every cached kernel.
"""

from __future__ import annotations

from .activations import (
    activate,
    activate_serial,
    activation_and_derivative,
    sigmoid_and_prime,
    sigmoid_chunk,
    softmax_rows,
)
from .backward import (
    accumulate_bias_gradient,
    accumulate_gradient,
    accumulate_weight_gradient,
    accumulate_weight_gradient_narrow,
    accumulate_weight_gradient_pair,
    accumulate_weight_gradient_quad,
    accumulate_weight_gradient_rows4,
    accumulate_weight_gradient_serial,
    accumulate_weight_gradient_unit,
    backpropagate_error,
    backpropagate_errors,
    backward_pass,
    batch_gradient,
    block_coefficients,
    layer_weight_gradient,
    output_error,
    rows4_chunk,
)
from .batch_norm import (
    batch_norm_backward,
    batch_norm_forward,
)
from .codes import (
    ADAM,
    CROSS_ENTROPY,
    ELU,
    LEAKY_RELU,
    LINEAR,
    LOG_LIKELIHOOD,
    MOMENTUM,
    NESTEROV,
    QUADRATIC,
    RELU,
    RMSPROP,
    SGD,
    SIGMOID,
    SOFTMAX,
    STEP,
    TANH,
)
from .columns import (
    COLUMN_BLOCKS,
    accumulate_weight_gradient_columns,
    accumulate_weight_gradient_columns_threaded,
    add_partial_sums,
    add_to,
    block_bounds,
    columns_to_rows,
    combine_ten_pairs,
    fma_ten_pairs,
    narrow_after_first,
    rows_to_columns,
    ten_coefficients,
    ten_rows,
    uses_columns,
    weighted_input_columns,
    weighted_input_columns_threaded,
)
from .epochs import (
    PARALLEL_MIN_WORK,
    copy_values,
    has_extras,
    largest_work,
    prefetch_rows,
    sgd_step,
    threading_threshold,
    train_epoch,
    train_epoch_general,
)
from .forward import (
    FEEDFORWARD_ROWS,
    add_projection,
    argmax_rows,
    feedforward,
    forward_pass,
    layer_activation,
    layer_weighted_input,
)
from .optimizers import (
    Hyper,
    optimizer_step,
)
from .perceptron import (
    perceptron_epoch,
    perceptron_output,
)
from .recurrent import (
    GRU,
    K_BLOCK,
    LSTM,
    RNN,
    RecurrentModel,
    RecurrentWork,
    accumulate_product,
    add_penalty_gradient,
    backward_layer,
    backward_layer_threaded,
    backward_sequences,
    clear_unused_rows,
    forward_layer,
    forward_layer_threaded,
    forward_sequences,
    gather_batch,
    gru_cell,
    gru_delta,
    layer_gradient,
    layer_gradient_threaded,
    layer_input,
    logistic,
    lstm_cell,
    lstm_delta,
    output_backward,
    output_layer,
    predict_sequences,
    recurrent_layer_views,
    recurrent_output_views,
    rnn_cell,
    rnn_delta,
    row_part,
    sequence_gradient,
    sequence_output_error,
    sigmoid_vector,
    store_tile_row,
    tanh_vector,
    train_epoch_recurrent,
    transpose_weights,
)
from .regularisation import (
    add_regularisation_gradient,
    clip_gradient,
    drop_out,
    regularise_weights,
    seed_generator,
)
from .team import (
    A_DONE,
    ARRIVED,
    B_DONE,
    C_DONE,
    CLAIMED,
    EAGER_SPINS,
    JOIN_NS,
    LINE,
    SPIN_NS,
    STALL_EVENTS,
    STALL_LEAST,
    STALL_NS,
    STALL_PART,
    STALLED,
    STALLS,
    TAKE_NS,
    TAKEN,
    TEAM_COUNTERS,
    TEAM_MIN_EPOCH_WORK,
    TEAM_MIN_FIRST_SHARE,
    TOOK_OVER,
    UNKNOWN,
    WAIT_WINDOW,
    arrive,
    column_buffers,
    member_slot,
    note_wait,
    pause,
    share_blocks,
    share_inputs,
    take_over,
    team_size,
    train_epoch_columns,
    update_share,
    usual_wait,
    wait_until,
    waited_since,
    weighted_input_share,
)
from .views import (
    Model,
    Workspace,
    all_finite,
    first_non_finite_layer,
    layer_views,
    norm_views,
    projection_view,
    unit_view,
    workspace,
)
from .weighted_input import (
    BLOCK_ROWS,
    NARROW,
    quad_chunk,
    transpose_into,
    weighted_input,
    weighted_input_chunks,
    weighted_input_narrow,
    weighted_input_narrow_serial,
    weighted_input_quad,
    weighted_input_serial,
)
