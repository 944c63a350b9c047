/* SPDX-License-Identifier: MIT */
/**
 * @file vio.h
 * Everything libvio offers: include this, link with pkg-config vio.
 */
#ifndef VIO_VIO_H
#define VIO_VIO_H

#include "vio/blk.h"
#include "vio/blk_client.h"
#include "vio/export.h"
#include "vio/log.h"
#include "vio/mem.h"
#include "vio/net.h"
#include "vio/net_client.h"
#include "vio/service.h"
#include "vio/virtio_spec.h"
#include "vio/vdev.h"
#include "vio/vhost_user.h"
#include "vio/virtq.h"

#endif
