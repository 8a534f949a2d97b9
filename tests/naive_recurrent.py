"""A plain NumPy reference of recurrent networks and BPTT, one sequence at a time, in float64,
written from the equations (README, "Recurrent networks"), not from the kernels."""

from __future__ import annotations

import numpy as np


def sigma(z):
    return 1 / (1 + np.exp(-z))


def _layers(net, params):
    return [net.layout.views(np.asarray(params, np.float64), l) for l in range(len(net.layers))]


def outputs_and_gradient(net, params, X, Y, lengths, *, bptt=None):
    """``(outputs, Σₓ ∇Cₓ, Σₓ ‖∂Cₓ/∂hₜ‖² per layer and step)`` of ``net``'s architecture with
    ``params`` on ``X`` ``(n, T, d)``, targets ``Y`` ``(n, S, n_out)``."""
    layers = _layers(net, params)
    out_layer, rec = layers[-1], layers[:-1]
    T = X.shape[1]
    grads = [{k: np.zeros_like(v) for k, v in layer.items()} for layer in layers]
    norms = np.zeros((len(rec), T))
    many = net.many_to_many
    outs = []
    for x, y, length in zip(X.astype(np.float64), Y.astype(np.float64), lengths, strict=True):
        # forward, storing every step's values
        inputs, caches = [x], []
        for layer in rec:
            W, b = layer["W"], layer["b"]
            n_in, H = inputs[-1].shape[1], W.shape[1] // net.layout.gates
            h, c = np.zeros(H), np.zeros(H)
            hs, steps = [h], []
            for t in range(T):
                xt = inputs[-1][t]
                if net.cell == "rnn":
                    h = np.tanh(xt @ W[:n_in] + h @ W[n_in:] + b)
                    steps.append({"h": h})
                elif net.cell == "lstm":
                    z = np.concatenate([xt, h]) @ W + b
                    i, f, g, o = (
                        sigma(z[:H]),
                        sigma(z[H : 2 * H]),
                        np.tanh(z[2 * H : 3 * H]),
                        sigma(z[3 * H :]),
                    )
                    c_prev, c = c, f * c + i * g
                    h = o * np.tanh(c)
                    steps.append(dict(i=i, f=f, g=g, o=o, c=c, c_prev=c_prev))
                else:
                    zx = xt @ W[:n_in] + b
                    zh = h @ W[n_in:]
                    r, u = sigma(zx[:H] + zh[:H]), sigma(zx[H : 2 * H] + zh[H : 2 * H])
                    hn = zh[2 * H :] + layer["b_hn"]
                    nn = np.tanh(zx[2 * H :] + r * hn)
                    h_prev, h = h, (1 - u) * nn + u * h
                    steps.append(dict(r=r, u=u, n=nn, hn=hn, h_prev=h_prev))
                hs.append(h)
            caches.append((hs, steps, n_in, H))
            inputs.append(np.array(hs[1:]))
        top = inputs[-1]
        V, cvec = out_layer["V"], out_layer["c"]

        def output(h, V=V, cvec=cvec):
            a = h @ V + cvec
            if net.output == "softmax":
                e = np.exp(a - a.max())
                return e / e.sum()
            return sigma(a) if net.output == "sigmoid" else a

        # the output errors δ = a − y, into ∂C/∂hₜ of the top layer
        dtop = np.zeros_like(top)
        if many:
            a_seq = np.array([output(top[t]) for t in range(T)])
            outs.append(a_seq)
            for t in range(length):
                delta = a_seq[t] - y[t]
                grads[-1]["V"] += np.outer(top[t], delta)
                grads[-1]["c"] += delta
                dtop[t] = V @ delta
        else:
            a = output(top[length - 1])
            outs.append(a[None])
            delta = a - y[0]
            grads[-1]["V"] += np.outer(top[length - 1], delta)
            grads[-1]["c"] += delta
            dtop[length - 1] = V @ delta
        # BPTT, top layer first
        for li in range(len(rec) - 1, -1, -1):
            layer, grad = rec[li], grads[li]
            hs, steps, n_in, H = caches[li]
            W = layer["W"]
            xs = inputs[li]
            dbelow = np.zeros((T, n_in))
            dh_next, dc_next = np.zeros(H), np.zeros(H)
            for t in range(T - 1, -1, -1):
                dh = dtop[t] + dh_next
                norms[li, t] += dh @ dh
                s = steps[t]
                if net.cell == "rnn":
                    dz = dh * (1 - s["h"] ** 2)
                    dzx, dzh, direct = dz, dz, np.zeros(H)
                elif net.cell == "lstm":
                    dc = dh * s["o"] * (1 - np.tanh(s["c"]) ** 2) + dc_next
                    dz = np.concatenate(
                        [
                            dc * s["g"] * s["i"] * (1 - s["i"]),
                            dc * s["c_prev"] * s["f"] * (1 - s["f"]),
                            dc * s["i"] * (1 - s["g"] ** 2),
                            dh * np.tanh(s["c"]) * s["o"] * (1 - s["o"]),
                        ]
                    )
                    dc_next = dc * s["f"]
                    dzx, dzh, direct = dz, dz, np.zeros(H)
                else:
                    dn_pre = dh * (1 - s["u"]) * (1 - s["n"] ** 2)
                    dr_pre = dn_pre * s["hn"] * s["r"] * (1 - s["r"])
                    du_pre = dh * (s["h_prev"] - s["n"]) * s["u"] * (1 - s["u"])
                    dzx = np.concatenate([dr_pre, du_pre, dn_pre])
                    dzh = np.concatenate([dr_pre, du_pre, dn_pre * s["r"]])
                    grad["b_hn"] += dn_pre * s["r"]
                    direct = dh * s["u"]
                grad["W"][:n_in] += np.outer(xs[t], dzx)
                grad["W"][n_in:] += np.outer(hs[t], dzh)
                grad["b"] += dzx
                dbelow[t] = W[:n_in] @ dzx
                dh_next = W[n_in:] @ dzh + direct
                if bptt and t % bptt == 0:
                    dh_next, dc_next = np.zeros(H), np.zeros(H)
            dtop = dbelow
    flat = np.zeros(net.params.size)
    for l, grad in enumerate(grads):
        for k, v in net.layout.views(flat, l).items():
            v[...] = grad[k]
    return np.array(outs), flat, norms
