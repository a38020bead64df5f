from django.contrib.auth.decorators import login_required
from django.db import models
from django.http import JsonResponse
from django.urls import path


class Comment(models.Model):
    text = models.TextField()


def add_comment(request):
    Comment.objects.create(text=request.POST["text"])
    return JsonResponse({})


@login_required
def add_comment_safe(request):
    Comment.objects.create(text=request.POST["text"])
    return JsonResponse({})


urlpatterns = [
    # ruleid: missing-authn-write
    path("comments/add/", add_comment),
    # ok: missing-authn-write
    path("comments/add-safe/", add_comment_safe),
]
