"""Test oracle: writes checkpoints with the real TF1 machinery (graph, tf.compat.v1 Saver and
tf.compat.v1.train.ExponentialMovingAverage), as the original code did."""

import os

import numpy as np
import tensorflow as tf


def _fed_assignments(targets_and_values):
    """One assign op per variable, fed through placeholders (keeps big values out of the graph)."""
    ops, feed = [], {}
    for variable, value in targets_and_values:
        placeholder = tf.compat.v1.placeholder(variable.dtype.base_dtype, shape=variable.shape)
        ops.append(variable.assign(placeholder))
        feed[placeholder] = value
    return tf.group(*ops), feed


def write_tf1_checkpoint(prefix, raw, shadows=None, global_step=0):
    """raw: {full variable name: value}; shadows: {full variable name: EMA value} for the averaged ones."""
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    with tf.Graph().as_default():
        variables = {name: tf.compat.v1.Variable(tf.zeros(np.shape(value), tf.float32), name=name)
                     for name, value in raw.items()}
        step = tf.compat.v1.train.get_or_create_global_step()
        pairs = [(variables[name], value) for name, value in raw.items()] + [(step, global_step)]
        if shadows:
            # The shadow names come from TF1's own EMA class (ema.apply would also build unused update ops).
            ema = tf.compat.v1.train.ExponentialMovingAverage(0.9999)
            for name, value in shadows.items():
                shadow_name = ema.average_name(variables[name])
                shadow = tf.compat.v1.Variable(tf.zeros(np.shape(value), tf.float32), name=shadow_name)
                assert shadow.op.name == shadow_name
                pairs.append((shadow, value))
        assign, feed = _fed_assignments(pairs)
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(assign, feed_dict=feed)
            return saver.save(sess, prefix, write_meta_graph=False)


def read_with_tf1_saver(prefix, names_and_shapes):
    """Restores the given names with a TF1 Saver (as upstream eval would) and returns their values."""
    with tf.Graph().as_default():
        variables = {name: tf.compat.v1.Variable(tf.zeros(shape, tf.float32), name=name)
                     for name, shape in names_and_shapes}
        saver = tf.compat.v1.train.Saver(variables)
        with tf.compat.v1.Session() as sess:
            saver.restore(sess, prefix)
            return sess.run(variables)
